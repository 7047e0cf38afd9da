"""Scheduler benchmark: how fast an alert becomes a running notebook, what the
scheduler adds to a papermill run, and how many short runs two workers get
through.

1. Latency: real ZTF alerts are produced to Kafka one at a time (every
   --spacing seconds); the real ingest (KafkaIngest with the user-filter
   evaluator) stores them and publishes filter matches; the scheduler service
   turns each match into a run; a worker runs the owner's notebook, whose first
   cell prints time.time(). Reported: produce -> first cell running, p50/p95
   (target p95 <= 10 s).
2. Overhead: the same notebook, alternately run by bare papermill (the
   `papermill` command, as the same unix account, same kernel) and by the
   scheduler (run now). Reported: medians and the ratios scheduled/bare, for
   the worker's part (claimed -> final row) and end to end (queued -> final
   row) (target <= 1.3x).
3. Throughput: --runs short runs queued at once, executed by --workers worker
   processes with one slot each. Reported: runs per minute.

Everything happens in scratch databases, topics and a scratch hub user
(removed afterwards). Services from `eval "$(.venv/bin/alertlab services up)"`.

    .venv/bin/python bench/scheduler.py [--alerts 20] [--spacing 4] [--pairs 8] [--runs 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import fastavro
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ALERTLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
ALERTLAB = str(Path(sys.executable).with_name("alertlab"))
FINAL = ("succeeded", "failed", "timed-out", "cancelled")


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def quantiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return statistics.median(xs), p95


def setup(tag: str) -> None:
    from alertlab.core import migrations

    os.environ.update({"ALERTLAB_APP_DB": f"alertlab_bench{tag}", "ALERTLAB_ALERTS_DB": f"alertlab_bencha{tag}",
                       "ALERTLAB_RUNS_TOPIC": f"bench-runs-{tag}", "ALERTLAB_MATCHES_TOPIC": f"bench-matches-{tag}",
                       "ALERTLAB_INGEST_FLUSH_MS": os.environ.get("ALERTLAB_INGEST_FLUSH_MS", "100")})
    for database in migrations.DATABASES:
        migrations.upgrade(database)


def teardown(tag: str, owner: str | None) -> None:
    from alertlab.core import db

    db.dispose_all()
    server = sa.create_engine(db.server_url())
    with server.begin() as conn:
        for name in (f"alertlab_bench{tag}", f"alertlab_bencha{tag}"):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    server.dispose()
    if owner and os.geteuid() == 0:
        from alertlab.hub import unixusers

        unixusers.remove(owner)


def write_notebook(account, path: str, *cells: str, parameters: str = "") -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(parameters)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    target = account.home / path
    nbformat.write(nb, str(target))
    if account.uid is not None:
        os.chown(target, account.uid, account.gid)
    return target


def start(*words: str) -> subprocess.Popen:
    log = open(Path(os.environ.get("ALERTLAB_HOME", ".")) / f"bench-{'-'.join(words)}-{os.getpid()}.log", "ab")
    return subprocess.Popen([ALERTLAB, *words], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def wait_runs(owner: str, n: int, timeout: float, schedule_id=None) -> list[dict]:
    from alertlab.scheduler import schedules

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = schedules.list_runs(owner, schedule_id, limit=1000)
        if len(runs) >= n and all(r["status"] in FINAL for r in runs):
            return runs
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {n} runs")


def first_cell_time(owner: str, run_id: int) -> float | None:
    from alertlab.scheduler import schedules

    nb = json.loads(schedules.run_output(owner, run_id, "ipynb"))
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            text = "".join(o.get("text", ""))
            if text.startswith("first-cell "):
                return float(text.split()[1])
    return None


def alerts(n: int) -> list[tuple[str, bytes]]:
    """n ZTF alert files of distinct objects: (objectId, message bytes)."""
    out, seen = [], set()
    for path in sorted(glob.glob(str(SHARED / "ztf" / "alerts" / "*.avro"))):
        data = Path(path).read_bytes()
        with open(path, "rb") as fh:
            oid = next(iter(fastavro.reader(fh)))["objectId"]
        if oid not in seen:
            seen.add(oid)
            out.append((oid, data))
        if len(out) == n:
            break
    return out


def latency(account, n: int, spacing: float) -> list[float]:
    from confluent_kafka import Producer

    from alertlab.core import db
    from alertlab.ingest.runner import KafkaIngest, producer_config
    from alertlab.scheduler import schedules

    with db.engine("alerts").begin() as conn:
        fid = conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES (%s, 'bench', 'ndet >= 1')",
                                   (account.owner,)).lastrowid
    write_notebook(account, "first.ipynb", "import time\nprint('first-cell', time.time())", "print(objectId)",
                   parameters="objectId = None")
    s = schedules.create_schedule(account.owner, "first.ipynb", on_filter=fid, kernel="python3",
                                  max_runs_per_hour=3600)
    topic = f"bench-alerts-{uuid.uuid4().hex[:8]}"
    ingest = KafkaIngest([topic], f"{topic}.ingest")
    t = threading.Thread(target=ingest.run, daemon=True)
    t.start()
    producer = Producer(producer_config())
    sent = {}
    time.sleep(3)  # let the ingest join its group
    for oid, data in alerts(n):
        sent[oid] = time.time()
        producer.produce(topic, data)
        producer.flush(10)
        time.sleep(spacing)
    runs = wait_runs(account.owner, len(sent), 120 + n * spacing, s["id"])
    ingest.stop()
    t.join(30)
    out = []
    for r in runs:
        run = schedules.get_run(account.owner, r["id"])
        first = first_cell_time(account.owner, r["id"]) if run["status"] == "succeeded" else None
        if first is None:
            say(f"  run {r['id']} {run['status']}: {run['error']}")
            continue
        out.append(first - sent[run["parameters"]["objectId"]])
    return out


def overhead(account, pairs: int) -> dict:
    from datetime import datetime

    from alertlab.scheduler import schedules

    write_notebook(account, "pair.ipynb", "import time\nprint('first-cell', time.time())",
                   "import math\nprint(sum(math.sqrt(i) for i in range(100000)))", parameters="objectId = None")
    s = schedules.create_schedule(account.owner, "pair.ipynb", cron="0 0 1 1 *", kernel="python3")
    env = {"PATH": f"{os.path.dirname(account.python)}:/usr/bin:/bin", "HOME": str(account.home),
           "USER": account.user, "LANG": "C.UTF-8"}
    user = dict(user=account.uid, group=account.gid, extra_groups=list(account.groups)) if account.uid else {}
    # the launcher skips one slow optional import of jsonschema's (see scheduler/launch.py); the
    # second baseline does the same, so the ratio to it is the scheduler's own overhead
    lean = ("import sys; sys.modules['rfc3987_syntax'] = None; import papermill; "
            "papermill.execute_notebook('pair.ipynb', 'lean-out.ipynb', parameters={'objectId': 'ZTFbench'}, "
            "kernel_name='python3', progress_bar=False)")
    bare, bare_lean, worker, end_to_end = [], [], [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        subprocess.run([account.python, "-m", "papermill", "pair.ipynb", "bare-out.ipynb", "-p", "objectId",
                        "ZTFbench", "-k", "python3", "--no-progress-bar"],
                       cwd=account.home, env=env, check=True, capture_output=True, **user)
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([account.python, "-c", lean], cwd=account.home, env=env, check=True, capture_output=True,
                       **user)
        bare_lean.append(time.perf_counter() - t0)
        run = schedules.run_now(account.owner, s["id"], {"objectId": "ZTFbench"})
        while run["status"] not in FINAL:
            time.sleep(0.1)
            run = schedules.get_run(account.owner, run["id"])
        assert run["status"] == "succeeded", run["error"]
        ended, started, queued = (datetime.fromisoformat(run[k]) for k in ("ended", "started", "queued"))
        worker.append((ended - started).total_seconds())
        end_to_end.append((ended - queued).total_seconds())
    return {"bare": statistics.median(bare), "lean": statistics.median(bare_lean), "worker": statistics.median(worker),
            "end_to_end": statistics.median(end_to_end)}


def throughput(account, n: int) -> tuple[float, int]:
    from datetime import datetime

    from alertlab.scheduler import schedules

    write_notebook(account, "short.ipynb", "x = 1 + 1")
    s = schedules.create_schedule(account.owner, "short.ipynb", cron="0 0 1 1 *", kernel="python3")
    t0 = time.time()
    for _ in range(n):
        schedules.run_now(account.owner, s["id"])
    runs = wait_runs(account.owner, n, 60 + n * 10, s["id"])
    first = min(datetime.fromisoformat(r["queued"]).timestamp() for r in runs)
    last = max(datetime.fromisoformat(r["ended"]).timestamp() for r in runs)
    ok = sum(r["status"] == "succeeded" for r in runs)
    return n / (max(last, t0) - first) * 60, ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=20)
    ap.add_argument("--spacing", type=float, default=4.0, help="seconds between alerts (part 1)")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from alertlab.scheduler import accounts

    tag = uuid.uuid4().hex[:8]
    setup(tag)
    owner = f"bench-{tag}"
    procs = []
    try:
        account = accounts.for_owner(owner)
        procs.append(start("scheduler", "run"))
        procs += [start("scheduler", "worker", "--slots", "1") for _ in range(args.workers)]
        time.sleep(8)  # imports, consumer groups
        say(f"1. latency: {args.alerts} alerts, one every {args.spacing:g}s ...")
        lat = latency(account, args.alerts, args.spacing)
        say(f"2. overhead: {args.pairs} pairs of bare papermill and scheduled runs ...")
        ovh = overhead(account, args.pairs)
        say(f"3. throughput: {args.runs} short runs on {args.workers} workers ...")
        rate, ok = throughput(account, args.runs)
    finally:
        stop(procs)
        teardown(tag, owner)
    p50, p95 = quantiles(lat)
    print(f"alert produced -> first cell running ({len(lat)} runs): p50 {p50:.2f}s  p95 {p95:.2f}s  "
          f"(target p95 <= 10s)")
    print(f"scheduled run: {ovh['worker']:.2f}s in the worker, {ovh['end_to_end']:.2f}s queued->done  "
          f"(target <= 1.3x bare)")
    for label, base in (("bare `papermill` command", ovh["bare"]),
                        ("bare papermill.execute_notebook without the slow import", ovh["lean"])):
        print(f"  vs {label} {base:.2f}s: {ovh['worker'] / base:.2f}x in the worker, "
              f"{ovh['end_to_end'] / base:.2f}x queued->done")
    print(f"throughput: {rate:.1f} short runs/min on {args.workers} workers ({ok}/{args.runs} succeeded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
