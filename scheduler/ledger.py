"""The run ledger (`runs`, `run_outputs`): every run's life, from queued to a
final status, in the database.

Life of a run:
    queued ──claim──► running ──finish──► succeeded | failed | timed-out | cancelled
       ▲                 │
       └── retry ────────┘  (failed or timed-out with attempts left: same row, attempt+1)

Guarantees, all from the database rather than from any process's memory:
- one row per (schedule, fire time) (UNIQUE): re-enqueueing a fire time after
  a restart inserts nothing, so a due run is never queued twice;
- ``claim`` is a conditional UPDATE (queued → running), so of two workers
  given the same message only one runs it;
- ``finish`` only touches a row still running under the same worker and
  attempt, so a worker that was presumed dead cannot overwrite what came after;
- ``reap`` settles runs whose worker died (no heartbeat for STALE_SECONDS, or
  its process is gone on this host): failed "worker died", retried when the
  schedule allows retries. A run is therefore never silently lost, and never
  run twice unless its schedule asked for retries.
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import signal
import socket
import tempfile
from datetime import datetime, timedelta

from alertlab.core.services.process import pid_alive
from alertlab.scheduler import queue
from alertlab.scheduler.store import dumps, engine, execute, naive, row, rows, utcnow

FINAL = ("succeeded", "failed", "timed-out", "cancelled")
STATUSES = ("queued", "running", *FINAL)
STALE_SECONDS = 30
HEARTBEAT_SECONDS = 2
MAX_OUTPUT_BYTES = 15 * 1024 * 1024  # compressed, under MariaDB's default max_allowed_packet (16 MB)

SUMMARY = ("id, schedule_id, owner, reason, fire_time, status, attempt, max_attempts, queued, started, ended, "
           "error, note, notebook, kernel")


def worker_id(instance: int = 0) -> str:
    """host:pid:instance: who holds a running run (and how to tell it died on this host)."""
    return f"{socket.gethostname()}:{os.getpid()}:{instance}"


def _worker_host_pid(worker: str | None) -> tuple[str, int | None]:
    parts = (worker or "").split(":")
    pid = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return parts[0], pid


# -- queueing -----------------------------------------------------------------------------------

def insert(conn, schedule: dict, reason: str, fire_time: datetime, parameters: dict) -> int | None:
    """A queued run of ``schedule`` at ``fire_time`` (in the caller's transaction); None if that
    fire time already has a run."""
    result = execute(conn, """
        INSERT IGNORE INTO runs (schedule_id, owner, reason, fire_time, parameters, notebook, kernel, status,
                                 attempt, max_attempts, queued)
        VALUES (:sid, :owner, :reason, :fire, :params, :notebook, :kernel, 'queued', 1, :max_attempts, :now)""",
        sid=schedule["id"], owner=schedule["owner"], reason=reason, fire=naive(fire_time),
        params=dumps(parameters), notebook=schedule["notebook"], kernel=schedule["kernel"],
        max_attempts=1 + int(schedule.get("retries") or 0), now=utcnow())
    return result.lastrowid if result.rowcount == 1 else None


def enqueue(schedule: dict, reason: str, fire_time: datetime, parameters: dict | None = None) -> int | None:
    """Insert the run and put it on the runs topic. None if this fire time was already queued."""
    params = {**(schedule.get("parameters") or {}), **(parameters or {})}
    with engine().begin() as conn:
        run_id = insert(conn, schedule, reason, fire_time, params)
    if run_id is not None:
        queue.publish([(run_id, 1)])
    return run_id


def republish_queued() -> int:
    """Put every queued run on the topic again (at service start: a crash between the INSERT and
    the publish must not leave a run waiting forever). Duplicates are harmless: claims are
    conditional."""
    with engine().connect() as conn:
        queued = rows(conn, "SELECT id, attempt FROM runs WHERE status = 'queued' ORDER BY id")
    queue.publish([(r["id"], r["attempt"]) for r in queued])
    return len(queued)


# -- a worker's side ----------------------------------------------------------------------------

def claim(run_id: int, worker: str) -> dict | None:
    """Take a queued run for ``worker``: the run joined with its schedule's settings, or None if
    someone else has it, it was cancelled, or it is finished."""
    now = utcnow()
    with engine().begin() as conn:
        taken = execute(conn, """
            UPDATE runs SET status = 'running', started = :now, heartbeat = :now, worker = :worker,
                            pid = NULL, ended = NULL
            WHERE id = :id AND status = 'queued'""", id=run_id, now=now, worker=worker).rowcount
        if not taken:
            return None
        run = row(conn, f"""
            SELECT r.*, s.name AS schedule_name, s.timeout_seconds, s.memory_mb, s.notify_on, s.notify_email,
                   s.notify_webhook
            FROM runs r JOIN schedules s ON s.id = r.schedule_id WHERE r.id = :id""", id=run_id)
    return run


def set_pid(run_id: int, worker: str, pid: int) -> None:
    with engine().begin() as conn:
        execute(conn, "UPDATE runs SET pid = :pid WHERE id = :id AND worker = :worker", id=run_id, pid=pid,
                worker=worker)


def heartbeat(run_id: int, worker: str, attempt: int) -> str:
    """Refresh the run's heartbeat: 'ok', 'cancel' (someone asked to cancel it) or 'gone' (the
    row is no longer this worker's: deleted, or reaped)."""
    with engine().begin() as conn:
        execute(conn, "UPDATE runs SET heartbeat = :now WHERE id = :id AND status = 'running' AND worker = :w "
                "AND attempt = :a", now=utcnow(), id=run_id, w=worker, a=attempt)
        r = row(conn, "SELECT status, worker, attempt, cancel_requested FROM runs WHERE id = :id", id=run_id)
    if r is None or r["status"] != "running" or r["worker"] != worker or r["attempt"] != attempt:
        return "gone"
    return "cancel" if r["cancel_requested"] else "ok"


def finish(run_id: int, worker: str, attempt: int, status: str, error: str | None = None,
           note: str | None = None, ipynb: bytes | None = None, html: bytes | None = None) -> dict | None:
    """Record the outcome of an attempt (and its output). A failed or timed-out attempt with
    attempts left goes back to the queue. Returns {"status", "requeued"}, or None when the run
    was no longer this worker's."""
    assert status in FINAL
    now = utcnow()
    with engine().begin() as conn:
        r = row(conn, "SELECT * FROM runs WHERE id = :id FOR UPDATE", id=run_id)
        if r is None or r["status"] != "running" or r["worker"] != worker or r["attempt"] != attempt:
            return None
        _store_output(conn, run_id, ipynb, html, now)
        outcome = _settle(conn, r, status, error, note, now)
    if outcome["requeued"]:
        queue.publish([(run_id, attempt + 1)])
    return outcome


def requeue(run_id: int, worker: str, attempt: int, note: str) -> bool:
    """Give a running run back to the queue unchanged (the worker is shutting down)."""
    with engine().begin() as conn:
        done = execute(conn, """
            UPDATE runs SET status = 'queued', started = NULL, heartbeat = NULL, worker = NULL, pid = NULL,
                            note = :note
            WHERE id = :id AND status = 'running' AND worker = :w AND attempt = :a""",
            id=run_id, w=worker, a=attempt, note=note).rowcount
    if done:
        queue.publish([(run_id, attempt)])
    return bool(done)


def _settle(conn, r: dict, status: str, error: str | None, note: str | None, now: datetime) -> dict:
    if status in ("failed", "timed-out") and r["attempt"] < r["max_attempts"]:
        execute(conn, """
            UPDATE runs SET status = 'queued', attempt = attempt + 1, queued = :now, started = NULL,
                            heartbeat = NULL, worker = NULL, pid = NULL, error = :error, note = :note
            WHERE id = :id""", id=r["id"], now=now,
            error=f"attempt {r['attempt']} {status}: {error or ''}"[:65000], note=note)
        return {"status": "queued", "requeued": True}
    execute(conn, "UPDATE runs SET status = :status, ended = :now, error = :error, note = :note WHERE id = :id",
            id=r["id"], status=status, now=now, error=(error or None) and error[:65000], note=note)
    return {"status": status, "requeued": False}


def _store_output(conn, run_id: int, ipynb: bytes | None, html: bytes | None, now: datetime) -> None:
    if ipynb is None and html is None:
        return
    ipynb_gz = gzip.compress(ipynb, 6) if ipynb is not None else None
    html_gz = gzip.compress(html, 6) if html is not None else None
    if ipynb_gz is not None and len(ipynb_gz) > MAX_OUTPUT_BYTES:
        ipynb_gz = None
    if html_gz is not None and len(html_gz) > MAX_OUTPUT_BYTES:
        html_gz = gzip.compress(b"<p>The output is too large to keep (over 15 MB compressed).</p>")
    execute(conn, """
        REPLACE INTO run_outputs (run_id, ipynb_gz, html_gz, ipynb_bytes, html_bytes, created)
        VALUES (:id, :ipynb, :html, :ni, :nh, :now)""", id=run_id, ipynb=ipynb_gz, html=html_gz,
        ni=len(ipynb) if ipynb is not None else None, nh=len(html) if html is not None else None, now=now)


# -- dead workers ---------------------------------------------------------------------------------

def reap(stale_seconds: float = STALE_SECONDS, host: str | None = None) -> list[int]:
    """Settle running runs whose worker is gone: no heartbeat for ``stale_seconds``, or (for
    ``host``, this machine) the worker process no longer exists. Leftover notebook processes of
    such runs on this host are killed first. Returns the run ids settled."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_seconds)
    this_host = socket.gethostname()
    with engine().connect() as conn:
        running = rows(conn, "SELECT id, worker, pid, attempt, heartbeat FROM runs WHERE status = 'running'")
    settled, requeued = [], []
    for r in running:
        whost, wpid = _worker_host_pid(r["worker"])
        dead = r["heartbeat"] is None or r["heartbeat"] < stale
        if not dead and host is not None and whost == host and wpid is not None:
            dead = not pid_alive(wpid)
        if not dead:
            continue
        if whost == this_host and r["pid"]:
            _kill_group(r["pid"])
        with engine().begin() as conn:
            current = row(conn, "SELECT * FROM runs WHERE id = :id FOR UPDATE", id=r["id"])
            if current is None or current["status"] != "running" or current["worker"] != r["worker"] \
                    or current["attempt"] != r["attempt"]:
                continue
            outcome = _settle(conn, current, "failed", "worker died (no heartbeat); the run was interrupted",
                              current["note"], now)
        settled.append(r["id"])
        if whost == this_host:
            remove_run_folders(r["id"])
        if outcome["requeued"]:
            requeued.append((r["id"], r["attempt"] + 1))
    queue.publish(requeued)
    return settled


def run_folder_prefix(run_id: int) -> str:
    """The name prefix of a run's private folder in the temporary directory (see execute.py)."""
    return f"alertlab-run-{run_id}-"


def remove_run_folders(run_id: int) -> None:
    """What a dead worker left of the run in the temporary directory."""
    for folder in glob.glob(os.path.join(tempfile.gettempdir(), glob.escape(run_folder_prefix(run_id)) + "*")):
        shutil.rmtree(folder, ignore_errors=True)


def _kill_group(pid: int) -> None:
    """Kill what is left of a dead worker's run: its process group (the launcher and papermill)
    and the kernel's (jupyter_client starts kernels in their own session)."""
    try:
        import psutil

        procs = psutil.Process(pid).children(recursive=True)
    except Exception:
        procs = []
    for p in procs:
        try:
            os.killpg(os.getpgid(p.pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- reading and cancelling ---------------------------------------------------------------------

def get(run_id: int) -> dict | None:
    with engine().connect() as conn:
        r = row(conn, f"SELECT {SUMMARY}, parameters, (SELECT COUNT(*) FROM run_outputs o WHERE o.run_id = r.id) "
                "AS has_output FROM runs r WHERE id = :id", id=run_id)
    return r


def search(owner: str, schedule_id: int | None = None, status: str | None = None,
           since: datetime | None = None, until: datetime | None = None, limit: int = 100,
           offset: int = 0) -> list[dict]:
    where, params = ["owner = :owner"], {"owner": owner, "limit": int(limit), "offset": int(offset)}
    if schedule_id is not None:
        where.append("schedule_id = :sid")
        params["sid"] = int(schedule_id)
    if status is not None:
        where.append("status = :status")
        params["status"] = status
    if since is not None:
        where.append("fire_time >= :since")
        params["since"] = naive(since)
    if until is not None:
        where.append("fire_time < :until")
        params["until"] = naive(until)
    with engine().connect() as conn:
        return rows(conn, f"SELECT {SUMMARY}, (SELECT COUNT(*) FROM run_outputs o WHERE o.run_id = r.id) "
                    f"AS has_output FROM runs r WHERE {' AND '.join(where)} "
                    "ORDER BY fire_time DESC, id DESC LIMIT :limit OFFSET :offset", **params)


def output(run_id: int, fmt: str) -> bytes | None:
    """The stored executed notebook ('ipynb') or its HTML ('html'), uncompressed."""
    column = {"ipynb": "ipynb_gz", "html": "html_gz"}[fmt]
    with engine().connect() as conn:
        r = row(conn, f"SELECT {column} AS data FROM run_outputs WHERE run_id = :id", id=run_id)
    if r is None or r["data"] is None:
        return None
    return gzip.decompress(r["data"])


def cancel(run_id: int) -> str:
    """Cancel a run: a queued one at once, a running one by asking its worker (which kills it
    within a heartbeat). Returns the status after the request."""
    with engine().begin() as conn:
        r = row(conn, "SELECT status FROM runs WHERE id = :id FOR UPDATE", id=run_id)
        if r is None:
            return "missing"
        if r["status"] == "queued":
            execute(conn, "UPDATE runs SET status = 'cancelled', ended = :now, error = 'cancelled before it "
                    "started' WHERE id = :id", id=run_id, now=utcnow())
            return "cancelled"
        if r["status"] == "running":
            execute(conn, "UPDATE runs SET cancel_requested = 1 WHERE id = :id", id=run_id)
            return "running"
        return r["status"]
