"""Ingest benchmark: synthetic ZTF alerts -> Kafka -> ingest -> MariaDB, with a
1,000,000-cone watchlist and 100 active filters (and a line for 1,000 filters).

Prints, for each configuration, the sustained rate (alerts/s, rows/s) of a
backlog, the CPU each process kind spends per alert (and so what the cores
allow at all), the produce -> committed latency (p50/p95) at a paced input rate
(median of --repeats runs, each after 10 s of warm-up input, on a broker first
warmed up with paced input until its JIT compilers settle), and the limits
measured in the same run on the same messages: bare decoding (cavro, as the
ingest decodes, and fastavro), and bare multi-row INSERTs of the same rows, as
ratios. Its stamps and topics are removed at the end.

Usage (services from `eval "$(.venv/bin/alertlab services up)"`):
    .venv/bin/python bench/ingest.py [--alerts 20000] [--cones 1000000] [--rate 1000] [--repeats 3]
                                     [--filters 100,1000] [--filter-set broad|selective] [--processes 1,2]
                                     [--paced-seconds 15] [--no-broker-warmup]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import KafkaError, KafkaException, Producer
from rich.console import Console

console = Console(stderr=True)
CORES = os.cpu_count() or 1
TOPICS: list[str] = []  # created by this run, deleted at its end
PACE_TICK_S = 0.01  # paced input: messages due within this many seconds go out together
# paced input: seconds of it that warm up fresh ingest processes before latency counts. Fresh processes start
# about a second behind (the first fetch, the first batches of a fresh stream, where every object is new) and
# at 1,000 alerts/s took up to ~10 s to catch up: with 3 s, the catch-up was inside the measured window
WARMUP_S = 10.0
PACED_S = 15.0  # paced input: seconds of it measured after the warm-up
BROKER_PASS_S = 10.0  # broker warm-up: seconds of paced input per pass
BROKER_PASSES = 8  # broker warm-up: at most this many passes...
BROKER_SETTLED = 0.05  # ...until its JIT compilers used less than this share of one core in a pass
BROKER_PASSES_UNMEASURED = 4  # where the broker's JIT cannot be measured (no /proc): this many passes


def delete_topics(topics: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    from alertlab.core.kafka_client import client_config

    topics = sorted(set(topics))  # a name twice makes the broker refuse the whole request
    if topics:
        admin = AdminClient(client_config())
        for name, future in admin.delete_topics(topics, operation_timeout=30).items():
            try:
                future.result(60)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:  # not already gone
                    console.print(f"bench: topic {name} not deleted: {exc.args[0].str()}")


def scratch_db(name: str) -> None:
    from alertlab.core import db, migrations

    import sqlalchemy as sa

    os.environ["ALERTLAB_ALERTS_DB"] = name

    server = sa.create_engine(db.server_url())
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    server.dispose()
    db.dispose_all()
    migrations.upgrade("alerts")


def drop_db(name: str) -> None:
    import sqlalchemy as sa

    from alertlab.core import db

    db.dispose_all()
    server = sa.create_engine(db.server_url())
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    server.dispose()


def make_messages(n: int, seed: int) -> list[bytes]:
    from alertlab.ingest.synthetic import ZtfGenerator

    with console.status(f"generating {n} synthetic ZTF alerts..."):
        return list(ZtfGenerator(seed=seed, n_objects=max(n // 4, 1)).messages(n))


def produce(topic: str, messages: list[bytes], rate: float | None = None, partitions: int | None = None) -> None:
    """Messages to ``topic`` (at ``rate`` per second if given); ``partitions``: create the topic with that many."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from alertlab.core.kafka_client import client_config
    from alertlab.ingest.runner import producer_config

    if partitions:
        admin = AdminClient(client_config())  # kept referenced until the topic exists (else the request dies)
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        deadline = time.monotonic() + 10  # a just-created topic's metadata can show its partitions late
        while len(admin.list_topics(topic, timeout=10).topics[topic].partitions) != partitions:
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} exists with another number of partitions than {partitions}")
            time.sleep(0.1)
    TOPICS.append(topic)
    producer = Producer(producer_config())
    start = time.monotonic()
    for i, m in enumerate(messages):
        if rate:
            # each message at (or just after) its due time; a sleep per message (1,000 a second) cost this
            # producer a quarter of its CPU, so it wakes at most every PACE_TICK_S and sends what is due
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(max(wait, PACE_TICK_S))
        while True:
            try:
                producer.produce(topic, m, key=str(i).encode())  # keys spread alerts over the partitions
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)


def setup_matching(cones: int, filters: int, seed: int, filter_set: str = "broad") -> None:
    """A ``cones``-cone watchlist and ``filters`` active filters: "broad" ones (each matching ~12 % of the
    alerts: a stress case for events) or the "selective" mix of bench/filters.py (each ~1 % of objects)."""
    from alertlab.core import db
    from alertlab.ingest.watchlists import insert_cones

    rng = np.random.default_rng(seed)
    with console.status(f"creating a {cones:,}-cone watchlist and {filters} filters..."):
        with db.engine("alerts").begin() as conn:
            conn.exec_driver_sql("DELETE FROM filters")
            wl = conn.exec_driver_sql("INSERT INTO watchlists (owner, name) VALUES ('bench', 'bench')").lastrowid
            if cones:
                ra = rng.uniform(0, 360, cones)
                dec = np.degrees(np.arcsin(rng.uniform(-1, 1, cones)))
                insert_cones(conn, wl, ra, dec, rng.uniform(1, 10, cones), [None] * cones)
            templates = ["r_ndet >= {a} AND r_rate < -{b}", "latest_mag < {m} AND ndet > {a}",
                         "g_minus_r < 0.{a} AND glat > {b}0", "g_ema2 < g_ema28 - 0.{a}",
                         "ndet >= {a} AND latest_reliability > 0.{b}"]
            rows = []
            if filter_set == "selective":
                import random

                import filters as filter_bench  # bench/filters.py

                wheres = filter_bench.filters(filters, random.Random(seed), filter_bench.SELECTIVE)
                rows = [("bench", f"f{i}", w) for i, w in enumerate(wheres)]
            for i in range(filters if filter_set == "broad" else 0):
                t = templates[i % len(templates)]
                rows.append(("bench", f"f{i}", t.format(a=1 + i % 5, b=1 + i % 7, m=17 + i % 4)))
            if rows:
                conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES (%s,%s,%s)", rows)


def cpu_by_kind(ingest_pids: list[int]) -> dict[str, float]:
    """CPU seconds used so far by the ingest processes, this machine's MariaDB and its Kafka broker."""
    import psutil

    out = {"ingest": 0.0, "MariaDB": 0.0, "Kafka": 0.0}
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            key = ("ingest" if p.info["pid"] in ingest_pids else "MariaDB" if p.info["name"] == "mariadbd"
                   else "Kafka" if _is_broker(cmd) else None)
            if key:
                t = p.cpu_times()
                out[key] += t.user + t.system
        except psutil.Error:
            continue
    return out


def _is_broker(cmdline: str) -> bool:
    return "kafka.Kafka" in cmdline


def _broker_pid() -> int | None:
    import psutil

    for p in psutil.process_iter(["pid", "cmdline"]):
        if _is_broker(" ".join(p.info["cmdline"] or [])):
            return p.info["pid"]
    return None


def broker_jit_seconds() -> float | None:
    """CPU seconds the broker's JIT compiler threads (HotSpot's "C1/C2 CompilerThre") have used so far: a freshly
    started broker spends a tenth of the machine compiling during its first minutes of paced input. None where
    it cannot be told (no broker process here, or no /proc)."""
    pid, total = _broker_pid(), 0.0
    tasks = Path(f"/proc/{pid}/task")
    if pid is None or not tasks.is_dir():
        return None
    for task in tasks.iterdir():
        try:
            if "CompilerThre" in (task / "comm").read_text():
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    return total


def warm_broker(messages: list[bytes], rate: float, partitions: int) -> tuple[int, float | None, float | None]:
    """Paced input through the broker (produced, and fetched by two plain consumers as the ingest fetches)
    until its JIT compilers settle: a broker runs for weeks, and a just-started one costs the machine about
    twice as much per alert (measured: 30 % of the two cores, 17 % once warm), which would decide the
    latency of a run by when the broker last started. Returns (passes, JIT CPU seconds in all, in the last);
    where the JIT cannot be measured, BROKER_PASSES_UNMEASURED passes and (passes, None, None)."""
    from confluent_kafka import Consumer

    from alertlab.core.kafka_client import client_config
    from alertlab.ingest.runner import FETCH_CONFIG

    n = int(rate * BROKER_PASS_S)
    batch = (messages * (n // max(len(messages), 1) + 1))[:n]
    measured = broker_jit_seconds() is not None
    used, last, passes = 0.0, 0.0, 0
    for passes in range(1, (BROKER_PASSES if measured else BROKER_PASSES_UNMEASURED) + 1):
        topic = f"bench-warm-{uuid.uuid4().hex[:6]}"
        produce(topic, [], partitions=partitions)
        stop = threading.Event()

        def fetch():
            consumer = Consumer(client_config(**{**FETCH_CONFIG, "group.id": f"bench-{topic}",
                                                 "auto.offset.reset": "earliest", "enable.auto.commit": False}))
            consumer.subscribe([topic])
            while not stop.is_set():
                consumer.consume(500, 0.05)
            consumer.close()

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            before = broker_jit_seconds()
            produce(topic, batch, rate)
            after = broker_jit_seconds()
        finally:  # a failed pass must not leave the fetching threads running (the bench would never exit)
            stop.set()
            for t in threads:
                t.join()
            delete_topics([topic])
        if not measured or before is None or after is None:
            measured = False
            continue
        last = after - before
        used += last
        if last < BROKER_SETTLED * BROKER_PASS_S:
            break
    if not measured:
        return passes, None, None
    return passes, used, last


def _group_formed(admin, group: str, processes: int) -> bool:
    """Whether all ``processes`` members of the consumer group hold partitions (a rebalance is over)."""
    from confluent_kafka import ConsumerGroupState

    try:
        desc = admin.describe_consumer_groups([group])[group].result(5)
    except KafkaException:
        return False
    members = [m for m in desc.members if m.assignment and m.assignment.topic_partitions]
    return desc.state == ConsumerGroupState.STABLE and len(members) == processes


def run_ingest(topic: str, processes: int = 1) -> tuple[float, float, dict[str, float]]:
    """Ingest the backlog with ``processes`` `alertlab ingest` processes in one consumer group.

    The rate and the CPU each kind of process spends per alert are both measured over the steady part of the
    run: from the moment every process holds partitions (joining the group and its rebalances are start-up,
    not ingest) to 90 % of the backlog stored. Returns (alerts/s, rows/s, CPU ms per alert by kind)."""
    import subprocess

    from confluent_kafka.admin import AdminClient

    from alertlab.core import db
    from alertlab.core.kafka_client import client_config

    group = f"bench-{topic}"
    cmd = [str(Path(sys.executable).with_name("alertlab")), "ingest", "--kafka", topic, "--group", group,
           "--until-idle", "3", "--quiet"]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    samples: list[tuple[float, int, dict]] = []   # (time, alerts stored, CPU by kind), from the group formed
    stop = threading.Event()

    def sample():
        eng, admin = db.engine("alerts"), AdminClient(client_config())
        formed = False
        while not stop.wait(0.5):
            formed = formed or _group_formed(admin, group, processes)
            if formed:
                with eng.connect() as conn:
                    stored = conn.exec_driver_sql("SELECT COUNT(*) FROM detections WHERE has_alert=1").scalar()
                samples.append((time.monotonic(), stored, cpu_by_kind([p.pid for p in procs])))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summaries = [p.communicate()[1] for p in procs]
    stop.set()
    sampler.join()
    if any(p.returncode for p in procs):
        raise RuntimeError(" | ".join(summaries))
    with db.engine("alerts").connect() as conn:
        n = conn.exec_driver_sql("SELECT COUNT(*) FROM detections WHERE has_alert=1").scalar()
        rows = sum(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                   for t in ("detections", "nondetections", "objects", "cutouts", "watchlist_hits"))
        matches = conn.exec_driver_sql("SELECT COALESCE(SUM(nmatches), 0) FROM filters").scalar()
    lo = samples[0] if samples else None
    hi = next((s for s in samples if s[1] >= 0.9 * n), None)
    if lo is None or hi is None or hi[1] - lo[1] < 0.3 * n:
        raise RuntimeError("the group formed too late to measure a steady rate: use more --alerts")
    rate = (hi[1] - lo[1]) / (hi[0] - lo[0])
    cpu = {k: 1000 * (hi[2][k] - lo[2][k]) / (hi[1] - lo[1]) for k in hi[2]}
    return rate, rate * rows / n, {**cpu, "matches": float(matches) / max(n, 1)}


def bare_decode(messages: list[bytes], library: str) -> float:
    """Decoding each message's records with ``library`` ("cavro" or "fastavro"), the embedded schema parsed
    once (``fastavro.reader`` parses it again for every message, which is slower than the ingest itself).
    The ingest decodes with cavro, so its line is the floor; fastavro's is the field's usual baseline."""
    from alertlab.ingest.avro_container import read_records

    accelerate = library == "cavro"
    read_records(messages[0], accelerate)
    t = time.perf_counter()
    for m in messages:
        read_records(m, accelerate)
    return len(messages) / (time.perf_counter() - t)


def bare_insert(messages: list[bytes]) -> tuple[float, int]:
    """The same detection rows as multi-row INSERTs into an empty table, and the same stamps appended to one
    file per batch: the storage work of the ingest and nothing else."""
    import tempfile

    from alertlab.core import db
    from alertlab.ingest.decode import decode, to_rows
    from alertlab.ingest import sql_values
    from alertlab.ingest.store import DET_COLS, _det_tuple

    alerts = [to_rows(a) for m in messages for a in decode(m)]
    eng = db.engine("alerts")
    with eng.begin() as conn:
        conn.exec_driver_sql("DELETE FROM detections")
    nrows = 0
    chunks = [alerts[i:i + 500] for i in range(0, len(alerts), 500)]
    # the detections (as decoding made them: before the clock, like the alerts), one of each per chunk
    unique = [list({d["detectionId"]: d for a in chunk for d in (a.detection, *(h.row() for h in a.history))}
                   .values()) for chunk in chunks]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for i, (chunk, detections) in enumerate(zip(chunks, unique)):
            dets = [_det_tuple(d) for d in detections]
            with eng.begin() as conn:
                sql_values.insert(conn, f"INSERT IGNORE INTO detections ({','.join(DET_COLS)}) VALUES", dets)
            with open(f"{tmp}/{i}.pack", "wb") as fh:
                for a in chunk:
                    for c in a.cutouts:
                        fh.write(c["data"])
            nrows += len(dets)
        elapsed = time.perf_counter() - t
    return len(alerts) / elapsed, nrows


def paced_latency(messages: list[bytes], rate: float, processes: int = 1, warmup: int = 0) -> tuple[float, float]:
    """Produce at ``rate`` alerts/s to ``processes`` `alertlab ingest` processes in one consumer group, once the
    group has formed. Returns the produce -> committed latency (p50, p95) each process reports at its end (with
    several processes, the largest of theirs: the p95 of all alerts is at most the largest p95), and the share
    of the machine's CPU each kind of process used while the input came (this producer included; "Kafka JIT"
    is the part of the broker's share its JIT compilers used).

    The first ``warmup`` messages are the processes' start-up (fresh processes, a fresh topic, a broker and a
    database that have not seen this input): they are produced at the same rate, in the same stream, but the
    reported latency covers only (about 95 % of) the messages after them, each process's latest ones."""
    import re
    import subprocess

    import psutil

    from confluent_kafka.admin import AdminClient

    from alertlab.core.kafka_client import client_config

    topic = f"bench-paced-{uuid.uuid4().hex[:6]}"
    group = f"bench-{topic}"
    produce(topic, [], partitions=2 * processes)
    window = int(0.95 * (len(messages) - warmup) / processes)  # keys spread the alerts evenly over the processes
    cmd = [str(Path(sys.executable).with_name("alertlab")), "ingest", "--kafka", topic, "--group", group,
           "--until-idle", "3", "--quiet", "--latency-window", str(window)]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    admin, deadline = AdminClient(client_config()), time.monotonic() + 120
    while not _group_formed(admin, group, processes):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("the ingest processes did not form their consumer group")
        time.sleep(0.2)
    time.sleep(1.0)
    me = psutil.Process()
    before, mine, t0 = cpu_by_kind([p.pid for p in procs]), sum(me.cpu_times()[:2]), time.monotonic()
    jit_before = broker_jit_seconds()
    produce(topic, messages, rate)
    after, mine_after, t1 = cpu_by_kind([p.pid for p in procs]), sum(me.cpu_times()[:2]), time.monotonic()
    jit_after = broker_jit_seconds()
    jit = math.nan if jit_before is None or jit_after is None else jit_after - jit_before
    busy = {"producer": mine_after - mine, **{k: after[k] - before[k] for k in after}, "Kafka JIT": jit}
    summaries = [p.communicate()[1] for p in procs]
    found = [re.search(r"latency p50 ([\d.]+)s p95 ([\d.]+)s", s) for s in summaries]
    if any(p.returncode for p in procs) or not all(found):
        raise RuntimeError(" | ".join(summaries))
    return (max(float(m.group(1)) for m in found), max(float(m.group(2)) for m in found),
            {k: v / ((t1 - t0) * CORES) for k, v in busy.items()})


def _busy(shares: dict[str, float]) -> float:
    """The machine's busy share from paced_latency's split ("Kafka JIT" is part of "Kafka")."""
    return sum(v for k, v in shares.items() if k != "Kafka JIT")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=20000)
    ap.add_argument("--cones", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=1000.0, help="paced input rate for the latency phase")
    ap.add_argument("--filters", default="100,1000")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--processes", default="1,2", help="ingest processes in the consumer group (a line each)")
    ap.add_argument("--filter-set", choices=["broad", "selective"], default="broad",
                    help="broad: each filter matches ~12%% of alerts (many events); selective: bench/filters.py's mix")
    ap.add_argument("--paced-seconds", type=float, default=None,
                    help=f"seconds of paced input measured after the warm-up (default: {PACED_S:g}, at most --alerts "
                         "alerts); a run holds all of its alerts in memory, ~75 MB per second at 1,000 alerts/s")
    ap.add_argument("--no-broker-warmup", action="store_true",
                    help="measure paced latency on the broker as it is (a just-started broker is still compiling)")
    args = ap.parse_args()
    if not os.environ.get("ALERTLAB_KAFKA") or not os.environ.get("ALERTLAB_DB_URL"):
        print('bench: set ALERTLAB_DB_URL and ALERTLAB_KAFKA (eval "$(.venv/bin/alertlab services up)")',
              file=sys.stderr)
        return 1
    db_name = f"alertlab_bench{uuid.uuid4().hex[:6]}"
    # the stamps and topics of a run are scratch: removed at the end (10,000 alerts leave ~1 GB of each)
    cutout_dir = tempfile.mkdtemp(prefix="alertlab-bench-cutouts-")
    os.environ["ALERTLAB_CUTOUT_DIR"] = cutout_dir
    messages = make_messages(args.alerts, seed=1)
    # each paced run needs alerts the database has not seen (a replay costs far less than new alerts); its first
    # WARMUP_S seconds are the ingest processes' start-up, not counted in the latency. A run's alerts are made just
    # before it, not all at the start: three runs' worth is ~6 GB, and a harness holding 9 GB of them left the
    # page cache short, so that the kernel reclaimed memory during the runs, in the processes being measured
    warmup = int(args.rate * WARMUP_S)
    paced_alerts = warmup + (int(args.rate * args.paced_seconds) if args.paced_seconds
                             else min(args.alerts, int(args.rate * PACED_S)))
    mb = sum(map(len, messages)) / len(messages) / 1024
    print(f"ingest benchmark: {len(messages)} synthetic ZTF alerts ({mb:.0f} KiB each with cutouts), "
          f"{args.cones:,}-cone watchlist, {CORES} cores")
    decode_rate = statistics.median(bare_decode(messages, "cavro") for _ in range(3))
    fastavro_rate = statistics.median(bare_decode(messages, "fastavro") for _ in range(3))
    warmed = args.no_broker_warmup
    try:
        for nfilters in [int(x) for x in args.filters.split(",")]:
            single = None
            for nproc in [int(x) for x in args.processes.split(",")]:
                rates, row_rates, cpus = [], [], []
                for rep in range(args.repeats):
                    scratch_db(db_name)
                    setup_matching(args.cones, nfilters, seed=3, filter_set=args.filter_set)
                    topic = f"bench-{uuid.uuid4().hex[:8]}"
                    with console.status("producing the backlog..."):
                        produce(topic, messages, partitions=max(nproc, 1) * 2)
                    with console.status(f"ingesting the backlog with {nfilters} filters, {nproc} process(es)..."):
                        rate_i, rows_i, cpu_i = run_ingest(topic, nproc)
                    rates.append(rate_i)
                    row_rates.append(rows_i)
                    cpus.append(cpu_i)
                rate = statistics.median(rates)
                if single is None:
                    single = rate
                cpu = {k: statistics.median(c[k] for c in cpus) for k in cpus[0]}
                matches = cpu.pop("matches")
                print(f"{nfilters:>5} {args.filter_set} filters, {nproc} process{'es' if nproc > 1 else ''}: {rate:7.0f} alerts/s  "
                      f"{statistics.median(row_rates):8.0f} rows/s (backlog, steady part, median of {args.repeats}); "
                      f"{matches:.1f} filter matches per alert")
                total = sum(cpu.values())
                if total > 0:
                    print(f"      CPU per alert: {', '.join(f'{k} {v:.2f} ms' for k, v in cpu.items())}; "
                          f"{total:.2f} ms in all, so {CORES} cores allow at most {1000 * CORES / total:.0f} "
                          f"alerts/s with this work (ingest at {rate / (1000 * CORES / total):.2f}x of that)")
                runs = []
                if not warmed:
                    with console.status("warming the broker up with paced input..."):
                        passes, jit_all, jit_last = warm_broker(messages, args.rate, 2 * nproc)
                    warmed = True
                    jit_note = ("its JIT could not be measured here" if jit_all is None else
                                f"its JIT compilers used {jit_all:.1f} s of CPU ({jit_last:.2f} s in the last pass)")
                    print(f"      broker warm-up: {passes} pass(es) of {BROKER_PASS_S:.0f} s of paced input; {jit_note}")
                for rep in range(args.repeats):
                    with console.status(f"paced input at {args.rate:.0f} alerts/s, {nproc} process(es), "
                                        f"run {rep + 1} of {args.repeats}..."):
                        paced = make_messages(paced_alerts, seed=100 + rep)
                        runs.append(paced_latency(paced, args.rate, nproc, warmup))
                        del paced
                p50 = statistics.median(r[0] for r in runs)
                p95 = statistics.median(r[1] for r in runs)
                busy = {k: statistics.median(r[2][k] for r in runs) for k in runs[0][2]}
                jit = busy.pop("Kafka JIT")
                each = (f" (runs: {', '.join(f'{r[1]:.2f} at {100 * _busy(r[2]):.0f}%' for r in runs)} busy)"
                        if len(runs) > 1 else "")
                print(f"      input paced at {args.rate:.0f} alerts/s ({WARMUP_S:.0f} s of warm-up, then "
                      f"{paced_alerts - warmup} alerts): produce -> committed latency p50 {p50:.2f}s "
                      f"p95 {p95:.2f}s{each}, median of {len(runs)}{' (largest of the processes)' if nproc > 1 else ''};"
                      f" the {CORES} cores {100 * _busy(busy):.0f}% busy meanwhile "
                      f"({', '.join(f'{k} {100 * v:.0f}%' for k, v in busy.items())}, of which the broker's JIT "
                      f"{'n/a' if math.isnan(jit) else f'{100 * jit:.0f}%'})")
            rate = single
            if nfilters == int(args.filters.split(",")[0]):
                scratch_db(db_name)
                insert_rate, nrows = bare_insert(messages)
                print(f"      limits: bare decode {decode_rate:7.0f} alerts/s with cavro, as the ingest decodes "
                      f"(ingest at {rate / decode_rate:.2f}x of it; fastavro alone {fastavro_rate:.0f}/s); bare "
                      f"multi-row INSERT of the same {nrows} rows (+ stamps to files) {insert_rate:7.0f} alerts/s "
                      f"(ingest at {rate / insert_rate:.2f}x of it)")
    finally:
        drop_db(db_name)
        shutil.rmtree(cutout_dir, ignore_errors=True)
        delete_topics(TOPICS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
