"""`alertlab demo`: bring AlertLab up on this machine from nothing, re-runnably.

Ordered named steps (JupyterHub's ``init_*`` style): each is idempotent, so a
second `make demo` only checks that everything is there. ``--down`` stops it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

STEPS = []
DOWN_FIRST = ["scheduler-worker", "scheduler", "ingest"]  # detached processes the demo started, stopped first


def step(func):
    STEPS.append(func)
    return func


@step
def init_services(ctx: dict) -> None:
    from alertlab.core.services import kafka, mariadb

    info = mariadb.up()
    ctx["db_url"] = os.environ["ALERTLAB_DB_URL"] = info["url"]
    os.environ.setdefault("ALERTLAB_DB_READER_URL", mariadb.url(mariadb.READER))
    ctx["kafka"] = os.environ["ALERTLAB_KAFKA"] = kafka.up()["bootstrap"]


@step
def init_schema(ctx: dict) -> None:
    from alertlab.core import migrations

    for database in migrations.DATABASES:
        migrations.upgrade(database)


@step
def init_hub(ctx: dict) -> None:
    """JupyterHub, the front door, at http://$ALERTLAB_HUB_IP:$ALERTLAB_HUB_PORT/ (default 127.0.0.1:8000)."""
    from alertlab.hub import demo

    ctx["hub_url"] = demo.up()


@step
def init_hub_users(ctx: dict) -> None:
    """An admin, and alice and bob in the group demo-team, with generated passwords."""
    from alertlab.hub import demo

    ctx["extra_lines"] = ctx.get("extra_lines", []) + demo.ensure_users()


DEMO_TOPICS = "ztf,lsst,annotations"


@step
def init_ingest(ctx: dict) -> None:
    """A long-running ingest consuming the demo topics, as a detached process."""
    import shutil

    from alertlab.core.services.process import ServiceState, start

    state = ServiceState("ingest")
    if not state.running():
        alertlab = shutil.which("alertlab") or str(Path(sys.executable).with_name("alertlab"))
        start(state, [alertlab, "ingest", "--kafka", DEMO_TOPICS, "--group", "alertlab-demo", "--quiet"],
              env=dict(os.environ))
    ctx["extra_lines"] = ctx.get("extra_lines", []) + [
        "", f"Ingest is consuming Kafka topics {DEMO_TOPICS} (log: $ALERTLAB_HOME/logs/ingest.log)."]


@step
def init_scheduler(ctx: dict) -> None:
    """The scheduler service (cron and alert triggers) and one run worker, as detached processes."""
    import argparse

    from alertlab.scheduler import cli as scheduler_cli

    scheduler_cli.up(argparse.Namespace())
    ctx["extra_lines"] = ctx.get("extra_lines", []) + [
        "The scheduler and a run worker are running (`alertlab scheduler status`; docs/scheduler.md)."]


@step
def init_sample_alerts(ctx: dict) -> None:
    """Replay the real ZTF sample alerts into the `ztf` topic once, and wait until they are stored."""
    import time

    from confluent_kafka import Producer

    from alertlab.core import db
    from alertlab.ingest import replay
    from alertlab.ingest.runner import producer_config

    files = sample_files()
    app = db.engine("app")
    with app.begin() as conn:
        done = conn.exec_driver_sql("SELECT value FROM app_meta WHERE name='demo_replayed'").scalar()
        if not done:
            producer = Producer(producer_config())
            n = 0
            for path in files:
                n += replay.produce(producer, "ztf", replay.messages_of_file(path.read_bytes()))
            conn.exec_driver_sql("INSERT INTO app_meta (name, value) VALUES ('demo_replayed', %s)", (str(n),))
    expected = len(files)
    deadline = time.monotonic() + 300
    with db.engine("alerts").connect() as conn:
        while True:
            stored = conn.exec_driver_sql("SELECT COUNT(*) FROM detections WHERE has_alert=1").scalar()
            if stored >= expected - 3 or time.monotonic() > deadline:  # the shared files repeat 3 candids
                break
            time.sleep(1)
            conn.rollback()
    ctx["extra_lines"] = ctx.get("extra_lines", []) + [
        f"The alert database holds {stored} alerts from {len(files)} sample files ({files[0].parent})."]


@step
def init_gallery(ctx: dict) -> None:
    """The example notebooks of shared_notebooks/, run once and published by alice as public gallery entries."""
    from alertlab.gallery import seed
    from alertlab.hub import control, demo

    lines = seed.publish_examples(demo.USERS[0], visibility="public")
    ctx["extra_lines"] = ctx.get("extra_lines", []) + [
        f"The gallery: {control.service_url()}gallery (dashboards: open an entry, then \"Open as dashboard\")."
    ] + lines


def sample_files() -> list[Path]:
    """All 561 shared ZTF alerts when ../shared/data is beside the checkout, else the 60 bundled ones."""
    from importlib import resources

    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ztf" / "alerts"
    files = sorted(shared.glob("*.avro"))
    if not files:
        files = sorted(Path(str(resources.files("alertlab.ingest") / "samples" / "ztf")).glob("*.avro"))
    return files


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="bring AlertLab up on this machine (what `make demo` runs)")
    p.add_argument("--down", action="store_true", help="stop everything the demo started")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.down:
        from alertlab.core.cli import services_down
        from alertlab.core.services.process import ServiceState, stop
        from alertlab.hub import control as hub

        if hub.down():  # users' servers and the hub, before the database they keep their state in
            print("hub: stopped", file=sys.stderr)
        for name in DOWN_FIRST:
            if stop(ServiceState(name)):
                print(f"{name}: stopped", file=sys.stderr)
        return services_down(args)
    ctx: dict = {}
    for func in STEPS:
        name = func.__name__.removeprefix("init_").replace("_", " ")
        print(f"- {name}...", file=sys.stderr, flush=True)
        func(ctx)
    print(_summary(ctx))
    return 0


def _summary(ctx: dict) -> str:
    lines = [
        "",
        "AlertLab is up.",
        "",
        "Use these in your shell (or `eval \"$(.venv/bin/alertlab services up)\"`):",
        f"  export ALERTLAB_DB_URL='{ctx['db_url']}'",
        f"  export ALERTLAB_KAFKA='{ctx['kafka']}'",
    ]
    for extra in ctx.get("extra_lines", []):
        lines.append(extra)
    lines += ["", "Stop it all with: make demo-down"]
    return "\n".join(lines)
