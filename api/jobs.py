"""Asynchronous queries: the SQL runs in the service's background threads with
the larger limits of ``alertlab.api.classes`` (rows and time), the result is
written to ``$ALERTLAB_HOME/jobs/<id>.jsonl.gz`` and fetched later, as JSON or
CSV, by its owner only.

A job's row (app table ``query_jobs``) goes ``queued`` → ``running`` →
``done`` | ``failed`` | ``cancelled``. The result file holds one JSON array per
row (cells as the synchronous API gives them), gzip-compressed; the column
names are in the row. A job belongs to the service process that accepted it
(``instance``): one found queued or running under another instance was cut
short by a restart and is marked failed when next looked at. Jobs and files
older than $ALERTLAB_JOB_KEEP_DAYS are deleted when a new job is submitted."""

from __future__ import annotations

import gzip
import json
import logging
import os
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from alertlab.api.formats import cell
from alertlab.api.readonly import QueryTimeout, stream_select
from alertlab.api.sqlguard import RejectedQuery
from alertlab.core import db, settings
from alertlab.core.errors import AlertLabError

log = logging.getLogger(__name__)

UNFINISHED = ("queued", "running")
COLUMNS = ["id", "owner", "sql_text", "row_limit", "row_offset", "max_seconds", "status", "error", "nrows",
           "truncated", "columns", "result_bytes", "created", "started", "finished"]
_instance: str | None = None


def instance() -> str:
    """This service process, as recorded on the jobs it accepts."""
    global _instance
    if _instance is None:
        _instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    return _instance


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def jobs_dir() -> Path:
    path = settings.home() / "jobs"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def result_path(job_id: str) -> Path:
    return jobs_dir() / f"{job_id}.jsonl.gz"


class Jobs:
    """The job store and the pool of threads that run the jobs (one per app)."""

    def __init__(self, workers: int | None = None):
        self._pool = ThreadPoolExecutor(workers or settings.get("ALERTLAB_JOB_WORKERS"),
                                        thread_name_prefix="alertlab-job")
        self._cancel: dict[str, threading.Event] = {}

    # -- the store -------------------------------------------------------------------------------

    def submit(self, owner: str, sql_text: str, checked_sql: str, limit: int, offset: int,
               max_seconds: float) -> dict:
        self._expire()
        job_id = secrets.token_hex(16)
        with db.engine("app").begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO query_jobs (id, owner, sql_text, checked_sql, row_limit, row_offset, max_seconds, "
                "status, instance, created) VALUES (%s, %s, %s, %s, %s, %s, %s, 'queued', %s, %s)",
                (job_id, owner, sql_text, checked_sql, limit, offset, max_seconds, instance(), _now()))
        self._cancel[job_id] = threading.Event()
        self._pool.submit(self._run, job_id)
        return self.get(job_id)

    def get(self, job_id: str) -> dict | None:
        with db.engine("app").connect() as conn:
            row = conn.exec_driver_sql(f"SELECT {', '.join(COLUMNS)}, instance FROM query_jobs WHERE id = %s",
                                       (job_id,)).mappings().first()
        if row is None:
            return None
        row = dict(row)
        if row["status"] in UNFINISHED and row.pop("instance") != instance():
            self._finish(job_id, "failed", error="the service restarted before the query finished: submit it again")
            return self.get(job_id)
        row.pop("instance", None)
        return _public(row)

    def of(self, owner: str, limit: int = 100) -> list[dict]:
        with db.engine("app").connect() as conn:
            ids = conn.exec_driver_sql("SELECT id FROM query_jobs WHERE owner = %s ORDER BY created DESC LIMIT %s",
                                       (owner, limit)).scalars().all()
        return [job for job in (self.get(i) for i in ids) if job is not None]

    def unfinished(self, owner: str) -> int:
        return sum(1 for job in self.of(owner, 1000) if job["status"] in UNFINISHED)

    def cancel(self, job_id: str) -> None:
        """Stop the job if it is still queued or running (its rows so far are dropped)."""
        event = self._cancel.get(job_id)
        if event is not None:
            event.set()
        self._finish(job_id, "cancelled", error="cancelled by its owner", only_unfinished=True)

    def delete(self, job_id: str) -> None:
        self.cancel(job_id)
        with db.engine("app").begin() as conn:
            conn.exec_driver_sql("DELETE FROM query_jobs WHERE id = %s", (job_id,))
        result_path(job_id).unlink(missing_ok=True)

    def shutdown(self) -> None:
        for event in self._cancel.values():
            event.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- running -----------------------------------------------------------------------------------

    def _run(self, job_id: str) -> None:
        cancel = self._cancel.get(job_id) or threading.Event()
        try:
            with db.engine("app").begin() as conn:
                claimed = conn.exec_driver_sql(
                    "UPDATE query_jobs SET status = 'running', started = %s WHERE id = %s AND status = 'queued'",
                    (_now(), job_id)).rowcount
                row = conn.exec_driver_sql("SELECT checked_sql, row_limit, row_offset, max_seconds FROM query_jobs "
                                           "WHERE id = %s", (job_id,)).one()
            if not claimed:
                return  # cancelled while queued
            sql, limit, offset, max_seconds = row
            columns, nrows, truncated, size = self._write(job_id, sql, int(limit), int(offset), float(max_seconds),
                                                          cancel)
            if cancel.is_set():
                result_path(job_id).unlink(missing_ok=True)
                return
            self._finish(job_id, "done", nrows=nrows, truncated=truncated, columns=columns, size=size)
        except (RejectedQuery, QueryTimeout, AlertLabError) as exc:
            self._finish(job_id, "failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the job must not stay "running" for ever
            log.exception("query job %s failed", job_id)
            self._finish(job_id, "failed", error=f"internal error: {type(exc).__name__}: {exc}"[:2000])
        finally:
            self._cancel.pop(job_id, None)

    def _write(self, job_id, sql, limit, offset, max_seconds, cancel) -> tuple[list[str], int, bool, int]:
        path = result_path(job_id)
        part = path.with_suffix(".part")
        columns, rows = stream_select(sql, limit=limit + 1, offset=offset, max_seconds=max_seconds)
        nrows, truncated = 0, False
        try:
            with gzip.open(part, "wt", encoding="utf-8", compresslevel=4) as out:
                for row in rows:
                    if cancel.is_set():
                        break
                    if nrows == limit:
                        truncated = True
                        break
                    out.write(json.dumps([cell(v) for v in row], default=str))
                    out.write("\n")
                    nrows += 1
        finally:
            rows.close()
        if cancel.is_set():
            part.unlink(missing_ok=True)
            return columns, nrows, truncated, 0
        part.rename(path)
        return columns, nrows, truncated, path.stat().st_size

    def _finish(self, job_id, status, *, error=None, nrows=None, truncated=None, columns=None, size=None,
                only_unfinished=False) -> None:
        only = " AND status IN ('queued', 'running')" if only_unfinished else ""
        with db.engine("app").begin() as conn:
            conn.exec_driver_sql(
                "UPDATE query_jobs SET status = %s, error = %s, nrows = %s, truncated = %s, columns = %s, "
                f"result_bytes = %s, finished = %s WHERE id = %s{only}",
                (status, error, nrows, None if truncated is None else int(truncated),
                 None if columns is None else json.dumps(columns), size, _now(), job_id))

    def _expire(self) -> None:
        cutoff = _now() - timedelta(days=settings.get("ALERTLAB_JOB_KEEP_DAYS"))
        with db.engine("app").begin() as conn:
            old = conn.exec_driver_sql("SELECT id FROM query_jobs WHERE created < %s AND status NOT IN "
                                       "('queued', 'running')", (cutoff,)).scalars().all()
            if old:
                conn.exec_driver_sql(f"DELETE FROM query_jobs WHERE id IN ({', '.join(['%s'] * len(old))})",
                                     tuple(old))
        for job_id in old:
            result_path(job_id).unlink(missing_ok=True)


def _public(row: dict) -> dict:
    out = {k: cell(v) for k, v in row.items()}
    out["sql"] = out.pop("sql_text")
    out["limit"] = out.pop("row_limit")
    out["offset"] = out.pop("row_offset")
    out["truncated"] = None if row["truncated"] is None else bool(row["truncated"])
    out["columns"] = json.loads(row["columns"]) if row["columns"] else None
    return out


def result_rows(job_id: str) -> Iterator[list]:
    """The stored rows of a finished job, one list at a time."""
    with gzip.open(result_path(job_id), "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def jobs(app) -> Jobs:
    if getattr(app.state, "jobs", None) is None:
        app.state.jobs = Jobs()
    return app.state.jobs
