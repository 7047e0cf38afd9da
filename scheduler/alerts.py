"""Alert triggers: match events (Kafka ``alertlab.matches``) become runs.

For each event, every enabled alert schedule on its source (filter,
watchlist, area or annotator) gets a *pending* row in `schedule_events`
(primary key: schedule and a digest of the event, so a redelivered event is
recorded once; events from before the schedule existed are ignored). Kafka
offsets are committed only after those rows are written, so a crash loses
nothing.

A schedule's pending events are flushed into one run when the oldest is
``window_seconds`` old (the collection window), in one transaction that locks
the schedule row. Each event is decided then, and the decision is kept on its
row (``status``):

- ``never-again``: the owner marked the object "never again" for the source;
- ``repeat``: the schedule's per-object policy says no (``once``: the object
  already had a run; ``days``: it had one less than ``repeat_days`` ago);
- ``rate-limited``: the schedule already had ``max_runs_per_hour`` alert runs
  in the last hour (the window's events are dropped, and the owner gets one
  in-app notice per hour);
- ``dropped``: the schedule was paused, deleted or re-targeted meanwhile;
- ``run``: part of the run ``run_id``, whose parameters are ``objectId`` (the
  first), ``objectIds``, ``detectionId``, ``detectionIds``, ``filter_id`` (for
  filters), ``trigger`` ({kind, id}) and ``matches`` (the event dicts).
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import sqlalchemy as sa

from alertlab.core import settings
from alertlab.scheduler import ledger, notify, queue
from alertlab.scheduler.store import dumps, engine, execute, naive, row, rows, utcnow

log = logging.getLogger(__name__)
MAX_MATCHES = 5000  # event dicts passed to one run; objectIds are never cut
EPOCH = datetime(1970, 1, 1)
REFRESH_SLACK = timedelta(seconds=5)


def matches_topic() -> str:
    return settings.get("ALERTLAB_MATCHES_TOPIC")


def consumer_group() -> str:
    return f"{matches_topic()}.scheduler"


def event_key(event: dict) -> str:
    """What makes two deliveries the same event (the ingest delivers at least once)."""
    if event.get("detectionId") is not None:
        ident = f"{event['kind']}|{event['id']}|{event['objectId']}|{event['detectionId']}"
    else:  # annotations have no detection: the same classification of the same object is the same event
        ident = f"{event['kind']}|{event['id']}|{event['objectId']}|{event.get('classification')}"
    return hashlib.sha1(ident.encode()).hexdigest()


def _ingest_time(event: dict) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(event.get("ingest_time")))
    except ValueError:
        return None
    return naive(t)


class AlertTriggers:
    """Records match events for the alert schedules they concern, and flushes windows into runs."""

    def __init__(self):
        self.by_source: dict[tuple[str, str], list[dict]] = {}
        self.refreshed_at = EPOCH  # when by_source was read (naive UTC, like ingest times)
        # match notifications (SMTP, webhooks) must not hold up the triggers
        self.notifier = ThreadPoolExecutor(2, thread_name_prefix="alertlab-notify")

    def refresh(self) -> None:
        """Re-read the enabled alert schedules (cheap; called every second and on unknown sources)."""
        started = utcnow()
        with engine().connect() as conn:
            found = rows(conn, "SELECT id, owner, alert_kind, alert_id, created FROM schedules "
                         "WHERE enabled = 1 AND trigger_kind = 'alert'")
        by_source: dict[tuple[str, str], list[dict]] = {}
        for s in found:
            by_source.setdefault((s["alert_kind"], s["alert_id"]), []).append(s)
        self.by_source = by_source
        self.refreshed_at = started

    def _refresh_if_stale(self, events: list[dict]) -> None:
        """Re-read the schedules when an event came after our last read and concerns no known schedule.

        A schedule created just before its first matching alert must see that
        alert, even if the periodic refresh has not run since (REFRESH_SLACK
        covers clock skew between the ingest's host and ours).
        """
        newest = None
        for e in events:
            if isinstance(e, dict) and (str(e.get("kind")), str(e.get("id"))) not in self.by_source:
                when = _ingest_time(e) or utcnow()
                newest = when if newest is None else max(newest, when)
        if newest is not None and newest >= self.refreshed_at - REFRESH_SLACK:
            self.refresh()

    def record(self, events: list[dict]) -> int:
        """Pending rows for the events' schedules. Returns how many new rows."""
        self._refresh_if_stale(events)
        values = []
        now = utcnow()
        for e in events:
            if not isinstance(e, dict) or "kind" not in e or "objectId" not in e:
                continue
            targets = self.by_source.get((str(e["kind"]), str(e.get("id"))))
            if not targets:
                continue
            when = _ingest_time(e)
            key = event_key(e)
            for s in targets:
                if when is not None and when < s["created"]:
                    continue  # an alert from before the schedule existed (an old message replayed)
                values.append({"sid": s["id"], "key": key, "obj": str(e["objectId"])[:64],
                               "det": e.get("detectionId"), "event": dumps(e), "now": now})
        if not values:
            return 0
        with engine().begin() as conn:
            result = execute(conn, """
                INSERT IGNORE INTO schedule_events (schedule_id, event_key, objectId, detectionId, event, status,
                                                    created)
                VALUES (:sid, :key, :obj, :det, :event, 'pending', :now)""", values)
        return result.rowcount

    def due(self, now: datetime | None = None) -> list[int]:
        """Schedules whose collection window is over."""
        now = now or utcnow()
        with engine().connect() as conn:
            found = rows(conn, """
                SELECT e.schedule_id, MIN(e.created) AS first, s.window_seconds
                FROM schedule_events e JOIN schedules s ON s.id = e.schedule_id
                WHERE e.status = 'pending' GROUP BY e.schedule_id, s.window_seconds""")
        return [r["schedule_id"] for r in found
                if r["first"] + timedelta(seconds=float(r["window_seconds"] or 0)) <= now]

    def flush_due(self) -> list[int]:
        """Flush every schedule whose window is over. Returns the run ids queued."""
        return [rid for sid in self.due() if (rid := self.flush(sid)) is not None]

    def flush(self, schedule_id: int) -> int | None:
        """Decide the schedule's pending events; queue one run for those that pass. Returns its id."""
        now = utcnow()
        with engine().begin() as conn:
            s = row(conn, "SELECT * FROM schedules WHERE id = :id FOR UPDATE", id=schedule_id)
            pending = rows(conn, "SELECT event_key, objectId, detectionId, event FROM schedule_events "
                           "WHERE schedule_id = :id AND status = 'pending' ORDER BY created, event_key FOR UPDATE",
                           id=schedule_id)
            if not pending or s is None:
                return None
            events = [dict(p, event=json.loads(p["event"])) for p in pending]
            if not s["enabled"] or s["trigger_kind"] != "alert":
                self._decide(conn, schedule_id, events, "dropped", now)
                return None
            source = (s["alert_kind"], s["alert_id"])
            retargeted = [e for e in events if (str(e["event"].get("kind")), str(e["event"].get("id"))) != source]
            self._decide(conn, schedule_id, retargeted, "dropped", now)
            events = [e for e in events if e not in retargeted]
            keep = self._apply_policies(conn, s, events, now)
            if not keep:
                return None
            since = now - timedelta(hours=1)
            recent = execute(conn, "SELECT COUNT(*) FROM runs WHERE schedule_id = :id AND reason = 'alert' "
                             "AND queued > :since", id=schedule_id, since=since).scalar()
            if recent >= s["max_runs_per_hour"]:
                self._decide(conn, schedule_id, keep, "rate-limited", now)
                notice = not execute(conn, "SELECT 1 FROM notifications WHERE schedule_id = :id AND "
                                     "kind = 'rate-limited' AND created > :since LIMIT 1", id=schedule_id,
                                     since=since).first()
                schedule = dict(s)
            else:
                run_id = ledger.insert(conn, s, "alert", now, {**json.loads(s["parameters"]), **self._parameters(s, keep)})
                if run_id is None:  # same microsecond as another flush of this schedule: next time
                    return None
                self._decide(conn, schedule_id, keep, "run", now, run_id)
                objects = list(dict.fromkeys(e["objectId"] for e in keep))
                execute(conn, """
                    INSERT INTO schedule_objects (schedule_id, objectId, last_run, runs) VALUES (:id, :obj, :now, 1)
                    ON DUPLICATE KEY UPDATE last_run = VALUES(last_run), runs = runs + 1""",
                        [{"id": schedule_id, "obj": o, "now": now} for o in objects])
                notice = None
        if notice is not None:
            if notice:
                notify.deliver(schedule, "rate-limited", f"AlertLab: {schedule['name']} reached its limit",
                               f"Schedule {schedule_id} ({schedule['name']}) already ran {schedule['max_runs_per_hour']}"
                               " times in the last hour on alerts; further matches are skipped until the hour "
                               "has passed (see schedule_events with status 'rate-limited').")
            return None
        queue.publish([(run_id, 1)])
        self.notifier.submit(self._notify_match, dict(s), run_id, objects)
        return run_id

    @staticmethod
    def _notify_match(schedule: dict, run_id: int, objects: list[str]) -> None:
        try:
            notify.matched(schedule, run_id, objects)
        except Exception as exc:  # a notification must not stop the triggers
            log.warning("match notification of schedule %s failed: %s", schedule["id"], exc)

    @staticmethod
    def _decide(conn, schedule_id: int, events: list[dict], status: str, now: datetime,
                run_id: int | None = None) -> None:
        if events:
            execute(conn, "UPDATE schedule_events SET status = :status, run_id = :run, decided = :now "
                    "WHERE schedule_id = :id AND event_key = :key",
                    [{"status": status, "run": run_id, "now": now, "id": schedule_id, "key": e["event_key"]}
                     for e in events])

    def _apply_policies(self, conn, s: dict, events: list[dict], now: datetime) -> list[dict]:
        """The events that pass "never again" and the per-object repeat policy (the others are decided)."""
        if not events:
            return []
        objects = sorted({e["objectId"] for e in events})
        blocked_sql = sa.text("SELECT objectId FROM never_again WHERE owner = :owner AND source_kind = :kind "
                              "AND source_id = :ident AND objectId IN :objs").bindparams(
            sa.bindparam("objs", expanding=True))
        blocked = {r[0] for r in conn.execute(blocked_sql, {"owner": s["owner"], "kind": s["alert_kind"],
                                                            "ident": s["alert_id"], "objs": objects})}
        seen: set[str] = set()
        if s["repeat_policy"] in ("once", "days"):
            since = EPOCH if s["repeat_policy"] == "once" else now - timedelta(days=float(s["repeat_days"]))
            seen_sql = sa.text("SELECT objectId FROM schedule_objects WHERE schedule_id = :id AND last_run > :since "
                               "AND objectId IN :objs").bindparams(sa.bindparam("objs", expanding=True))
            seen = {r[0] for r in conn.execute(seen_sql, {"id": s["id"], "since": since, "objs": objects})}
        never = [e for e in events if e["objectId"] in blocked]
        repeat = [e for e in events if e["objectId"] not in blocked and e["objectId"] in seen]
        self._decide(conn, s["id"], never, "never-again", now)
        self._decide(conn, s["id"], repeat, "repeat", now)
        return [e for e in events if e["objectId"] not in blocked and e["objectId"] not in seen]

    @staticmethod
    def _parameters(s: dict, events: list[dict]) -> dict:
        objects = list(dict.fromkeys(e["objectId"] for e in events))
        detections = list(dict.fromkeys(e["detectionId"] for e in events if e["detectionId"] is not None))
        return {
            "objectId": objects[0], "objectIds": objects,
            "detectionId": detections[0] if detections else None, "detectionIds": detections,
            "filter_id": int(s["alert_id"]) if s["alert_kind"] == "filter" else None,
            "trigger": {"kind": s["alert_kind"], "id": s["alert_id"]},
            "matches": [e["event"] for e in events[:MAX_MATCHES]],
        }

    def purge(self, days: float = 30) -> int:
        """Forget decided events older than ``days`` (the per-object policy keeps its own table)."""
        with engine().begin() as conn:
            return execute(conn, "DELETE FROM schedule_events WHERE status <> 'pending' AND created < :before "
                           "LIMIT 10000", before=utcnow() - timedelta(days=days)).rowcount


def parse(value: bytes) -> dict | None:
    try:
        event = json.loads(value)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
