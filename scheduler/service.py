"""`alertlab scheduler run`: the scheduler service (time triggers, alert
triggers, and the reaper of runs whose worker died).

Time triggers: APScheduler 3 is the timing engine, with an in-memory job
store rebuilt from the `schedules` table (at start, and whenever a row's
``version`` changes; no user data is ever pickled) and one executor of ours,
``EnqueueExecutor``, which turns each due fire time into a queued run
(``ledger.enqueue``: a row, unique per schedule and fire time, and a message
on the runs topic). Workers execute runs; this service never runs notebooks.

Restarts lose nothing and double nothing: each job's first fire time is
computed from the schedule's last queued fire time (or its last change), so
fire times that fell while the service was down are due at once; APScheduler
coalesces them into one, and the executor enqueues it if it is at most
ALERTLAB_SCHEDULER_GRACE seconds late. A fire time already queued is not
inserted again (the unique key).

Alert triggers: a consumer (group ``<ALERTLAB_MATCHES_TOPIC>.scheduler``) feeds
``alerts.AlertTriggers``, and windows are flushed into runs as they close.

One service is active at a time: it holds the MariaDB lock
``alertlab-scheduler`` (GET_LOCK); a second one waits as a standby and takes
over when the first one's connection goes away."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from confluent_kafka import Consumer, KafkaError

from alertlab.core import db, settings
from alertlab.scheduler import alerts, ledger, queue, schedules, triggers
from alertlab.scheduler.store import aware, engine, rows
from alertlab.core.kafka_client import client_config

log = logging.getLogger(__name__)
SYNC_SECONDS = 1.0
REAP_SECONDS = 5.0


def fire(schedule_id: int, fire_time: datetime | None = None) -> int | None:
    """Queue the run of ``schedule_id`` due at ``fire_time`` (no-op if it is already queued).
    EnqueueExecutor always passes the fire time; the default only satisfies APScheduler's check."""
    fire_time = fire_time or datetime.now(timezone.utc)
    s = schedules.load(schedule_id)
    if s is None or not s["enabled"] or s["trigger_kind"] not in ("cron", "interval"):
        return None
    run_id = ledger.enqueue(s, s["trigger_kind"], fire_time)
    log.info("schedule %s: fire time %s -> run %s", schedule_id, fire_time.isoformat(), run_id)
    return run_id


class EnqueueExecutor(BaseExecutor):
    """APScheduler executor whose "execution" is queueing the run for the workers, with the
    scheduled fire time (which APScheduler's own executors do not hand to the job)."""

    def start(self, scheduler, alias):
        super().start(scheduler, alias)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="alertlab-enqueue")

    def shutdown(self, wait=True):
        self._pool.shutdown(wait)

    def _do_submit_job(self, job, run_times):
        self._pool.submit(self._run, job, list(run_times))

    def _run(self, job, run_times):
        events = []
        for run_time in run_times:
            late = (datetime.now(timezone.utc) - run_time).total_seconds()
            if job.misfire_grace_time is not None and late > job.misfire_grace_time:
                log.warning("schedule %s: fire time %s missed by %.0fs (more than the grace): skipped",
                            job.id, run_time.isoformat(), late)
                events.append(JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time))
                continue
            try:
                job.func(*job.args, run_time)
            except Exception:
                log.exception("schedule %s: could not queue the run of %s", job.id, run_time.isoformat())
        self._run_job_success(job.id, events)


class SchedulerService:
    def __init__(self):
        self.stopping = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self.versions: dict[int, int] = {}
        self.triggers = alerts.AlertTriggers()
        self.alert_thread: threading.Thread | None = None
        self.lock_conn = None
        self.ready = threading.Event()   # leader, jobs loaded, alert consumer assigned
        self.started_hook = None         # called once when ready (the CLI records it for `up`)

    # -- leadership ----------------------------------------------------------------------------

    def _lock_name(self) -> str:
        return f"alertlab-scheduler:{db.database_name('app')}"

    def acquire_leadership(self) -> bool:
        """Wait until this service holds the scheduler lock (False if stopped while waiting)."""
        said = False
        while not self.stopping.is_set():
            conn = engine().connect()
            got = conn.exec_driver_sql("SELECT GET_LOCK(%s, 2)", (self._lock_name(),)).scalar()
            conn.commit()  # no transaction left open on this long-lived connection
            if got == 1:
                self.lock_conn = conn
                return True
            conn.close()
            if not said:
                log.warning("another scheduler service holds the lock; standing by")
                said = True
        return False

    def _still_leader(self) -> bool:
        try:
            owner = self.lock_conn.exec_driver_sql("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()",
                                                   (self._lock_name(),)).scalar()
            self.lock_conn.commit()
            return bool(owner)
        except Exception:
            return False

    # -- time triggers --------------------------------------------------------------------------

    def _next_run_time(self, s: dict, trigger, now: datetime) -> datetime | None:
        with engine().connect() as conn:
            last = conn.exec_driver_sql(
                "SELECT MAX(fire_time) FROM runs WHERE schedule_id = %s AND reason IN ('cron', 'interval')",
                (s["id"],)).scalar()
        if last is not None and last >= s["updated"]:
            nxt = trigger.get_next_fire_time(aware(last), aware(last))
        else:
            nxt = trigger.get_next_fire_time(None, aware(s["updated"]))
        grace = settings.get("ALERTLAB_SCHEDULER_GRACE")
        if nxt is not None and nxt < now - timedelta(seconds=grace):
            # long down: skip what is beyond the grace without iterating over every missed time
            nxt = trigger.get_next_fire_time(None, now - timedelta(seconds=grace))
        return nxt

    def sync(self) -> None:
        """Make APScheduler's jobs match the enabled cron and interval schedules."""
        with engine().connect() as conn:
            current = {r["id"]: r["version"] for r in rows(
                conn, "SELECT id, version FROM schedules WHERE enabled = 1 AND trigger_kind IN ('cron', 'interval')")}
        for sid in set(self.versions) - set(current):
            self._remove(sid)
        now = datetime.now(timezone.utc)
        for sid, version in current.items():
            if self.versions.get(sid) == version:
                continue
            s = schedules.load(sid)
            if s is None:
                continue
            try:
                trigger = triggers.for_schedule(s)
            except Exception as exc:  # a row edited by hand into something invalid
                log.error("schedule %s has an invalid trigger (%s): not scheduled", sid, exc)
                self._remove(sid)
                self.versions[sid] = version
                continue
            nxt = self._next_run_time(s, trigger, now)
            self._remove(sid)
            if nxt is not None:
                # max_instances: queueing never makes APScheduler skip a fire time (one thread queues them)
                self.scheduler.add_job(fire, trigger=trigger, args=[sid], id=str(sid), name=s["name"],
                                       next_run_time=nxt, coalesce=True, max_instances=1000,
                                       misfire_grace_time=max(1, int(settings.get("ALERTLAB_SCHEDULER_GRACE"))))
            self.versions[sid] = version
        self.triggers.refresh()

    def _remove(self, sid: int) -> None:
        if self.scheduler.get_job(str(sid)) is not None:
            self.scheduler.remove_job(str(sid))
        self.versions.pop(sid, None)

    # -- alert triggers ------------------------------------------------------------------------

    def _alert_loop(self) -> None:
        consumer = Consumer({
            **client_config(), "group.id": alerts.consumer_group(),
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000, "log_level": 3, "fetch.wait.max.ms": 50,
        })
        assigned = threading.Event()
        consumer.subscribe([alerts.matches_topic()], on_assign=lambda c, p: assigned.set())
        try:
            while not self.stopping.is_set():
                msgs = consumer.consume(num_messages=500, timeout=0.1)
                events, consumed = [], False
                for m in msgs:
                    if m.error() is not None:
                        if m.error().code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                            log.warning("matches topic: %s", m.error())
                        continue
                    consumed = True
                    event = alerts.parse(m.value() or b"")
                    if event is not None:
                        events.append(event)
                try:
                    if events:
                        self.triggers.record(events)
                    if consumed:
                        consumer.commit(asynchronous=False)
                    self.triggers.flush_due()
                except Exception:
                    log.exception("alert triggers failed; retrying")  # offsets not committed: nothing lost
                    time.sleep(1)
                if assigned.is_set():
                    self.ready.set()
        finally:
            consumer.close()

    # -- the service --------------------------------------------------------------------------

    def start(self) -> None:
        """Become the leader, load the jobs, start the alert consumer (returns once running)."""
        if not self.acquire_leadership():
            return
        settled = ledger.reap()
        if settled:
            log.warning("settled runs whose worker died: %s", settled)
        republished = ledger.republish_queued()
        if republished:
            log.info("queued runs put on the topic again after a restart: %d", republished)
        queue.ensure_topic()
        queue.ensure_topic(alerts.matches_topic(), partitions=1)  # as the ingest's producer would make it
        self.scheduler = BackgroundScheduler(timezone=timezone.utc, executors={"default": EnqueueExecutor()})
        self.scheduler.start()
        self.sync()
        self.alert_thread = threading.Thread(target=self._alert_loop, name="alertlab-alert-triggers", daemon=True)
        self.alert_thread.start()

    def run_forever(self) -> None:
        self.start()
        last_sync = last_reap = last_purge = time.monotonic()
        while not self.stopping.wait(0.25):
            now = time.monotonic()
            if self.started_hook is not None and self.ready.is_set():
                self.started_hook()
                self.started_hook = None
            try:
                if now - last_sync >= SYNC_SECONDS:
                    last_sync = now
                    if not self._still_leader():
                        log.error("lost the scheduler lock (database connection gone); stopping")
                        break
                    self.sync()
                if now - last_reap >= REAP_SECONDS:
                    last_reap = now
                    ledger.reap(host=socket.gethostname())
                if now - last_purge >= 3600:
                    last_purge = now
                    self.triggers.purge()
            except Exception:
                log.exception("scheduler housekeeping failed; retrying")
        self.shutdown()

    def stop(self, *_args) -> None:
        self.stopping.set()

    def shutdown(self) -> None:
        self.stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self.alert_thread is not None:
            self.alert_thread.join(timeout=30)
        if self.lock_conn is not None:
            try:
                self.lock_conn.close()
            except Exception:
                pass


def main() -> int:
    service = SchedulerService()
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    service.run_forever()
    return 0
