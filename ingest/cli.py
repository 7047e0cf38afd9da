"""`alertlab ingest` and `alertlab replay`."""

from __future__ import annotations

import sys
import time

from alertlab.core.errors import AlertLabError

PROGRESS_EVERY_S = 1.0


def add_commands(sub) -> None:
    p = sub.add_parser("ingest", help="ingest alerts from Kafka topics or Avro files into the alert database")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--kafka", metavar="TOPIC[,TOPIC...]", help="consume these topics (a consumer group member)")
    src.add_argument("--files", nargs="+", metavar="GLOB", help="read Avro container files")
    p.add_argument("--group", default="alertlab-ingest", help="Kafka consumer group (default: alertlab-ingest)")
    p.add_argument("--until-idle", type=float, metavar="SECONDS",
                   help="stop after this many seconds without a message (default: run until stopped)")
    p.add_argument("--survey", choices=["ztf", "lsst"], help="force the survey instead of detecting it")
    p.add_argument("--no-match", action="store_true", help="skip watchlists, areas and filters")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--latency-window", type=int, default=0, metavar="N",
                   help="the latency shown covers the latest N alerts (default 100,000)")
    p.set_defaults(func=run_ingest)

    r = sub.add_parser("replay", help="produce Avro alert files to a Kafka topic (demos, tests, benchmarks)")
    r.add_argument("--files", nargs="+", required=True, metavar="GLOB")
    r.add_argument("--topic", required=True)
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=run_replay)


def _require_kafka() -> str:
    from alertlab.core.kafka_client import bootstrap

    return bootstrap()  # a one-line error when there is no Kafka


def run_ingest(args) -> int:
    from rich.console import Console

    from alertlab.ingest import runner

    console = Console(stderr=True, quiet=args.quiet)
    if args.kafka:
        _require_kafka()
        topics = [t for t in args.kafka.split(",") if t]
        status = console.status(f"ingesting from {', '.join(topics)}...")
        status.start()
        shown = [0.0]

        def progress(totals):
            if time.monotonic() - shown[0] >= PROGRESS_EVERY_S:  # the summary sorts the latencies: not per batch
                shown[0] = time.monotonic()
                status.update(f"ingesting from {', '.join(topics)}: {totals.summary()}")

        ingest = runner.KafkaIngest(topics, args.group, until_idle=args.until_idle, survey=args.survey,
                                    pipeline=None if not args.no_match else runner.build_pipeline(None, args.survey, False),
                                    progress=None if args.quiet else progress, latency_window=args.latency_window)
        try:
            totals = ingest.run()
        finally:
            status.stop()
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        paths = runner.expand(args.files)
        missing = [p for p in paths if not _exists(p)]
        if missing:
            raise AlertLabError(f"no such file: {missing[0]}")
        with Progress(TextColumn("ingesting files"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[rate]}"), console=console) as bar:
            task = bar.add_task("files", total=len(paths), rate="")

            def progress(totals, n):
                bar.update(task, advance=n, rate=f"{totals.rate():.0f} alerts/s")

            totals = runner.ingest_files(paths, args.survey, progress=progress, match=not args.no_match)
    print(totals.summary(), file=sys.stderr)
    return 0


def _exists(path: str) -> bool:
    import os

    return os.path.isfile(path)


def run_replay(args) -> int:
    from confluent_kafka import Producer
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from alertlab.ingest import replay, runner

    _require_kafka()
    paths = runner.expand(args.files)
    console = Console(stderr=True, quiet=args.quiet)
    producer = Producer(runner.producer_config())
    total = 0
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("files", total=len(paths))
        for path in paths:
            with open(path, "rb") as fh:
                msgs = replay.messages_of_file(fh.read())
            total += replay.produce(producer, args.topic, msgs)
            bar.update(task, advance=1)
    print(f"produced {total} messages from {len(paths)} files to {args.topic}", file=sys.stderr)
    return 0
