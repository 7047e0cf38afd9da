"""The scheduler against real MariaDB, Kafka, kernels and unix accounts: cron
runs, alert-triggered runs as the owner with notifications, never-again,
windows and rate caps, a kill -9 in the middle of a run, and runaways.

Each test has its own app database, topics and hub users (``alice-<hex>``,
unix accounts ``alertlab-alice-<hex>`` when root, removed afterwards)."""

from __future__ import annotations

import glob
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import fastavro
import pytest
import sqlalchemy as sa

from alertlab.core import db, migrations
from alertlab.core.services.process import ServiceState, free_port
from alertlab.scheduler import accounts, schedules
from alertlab.scheduler.errors import NotFound, ScheduleForbidden
from conftest import SHARED_DATA

pytestmark = pytest.mark.services
ALERTLAB = str(Path(sys.executable).with_name("alertlab"))
ZTF_FILES = sorted(glob.glob(str(SHARED_DATA / "ztf" / "alerts" / "*.avro")))


# -- fixtures and helpers (test_scheduler_api.py imports some) ------------------------------------

@pytest.fixture
def sched(services, monkeypatch):
    """A scheduler of its own: a fresh app database at head, fresh topics, sub-minute triggers."""
    tag = uuid.uuid4().hex[:10]
    name = f"alertlab_t{tag}"
    monkeypatch.setenv("ALERTLAB_APP_DB", name)
    monkeypatch.setenv("ALERTLAB_RUNS_TOPIC", f"runs-{tag}")
    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", f"matches-{tag}")
    monkeypatch.setenv("ALERTLAB_SCHEDULER_MIN_INTERVAL", "1")
    monkeypatch.setenv("ALERTLAB_WEBHOOK_PRIVATE", "true")
    monkeypatch.setenv("ALERTLAB_SMTP_HOST", "")
    migrations.upgrade("app")
    yield tag
    server = sa.create_engine(db.server_url())
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    server.dispose()


@pytest.fixture
def make_owner():
    """make_owner("alice") -> the RunAccount of a new hub user alice-<hex> (a unix account when root)."""
    made = []

    def make(base: str = "alice") -> accounts.RunAccount:
        name = f"{base}-{uuid.uuid4().hex[:6]}"
        made.append(name)
        return accounts.for_owner(name)

    yield make
    if accounts.isolated():
        from alertlab.hub import unixusers

        for name in made:
            unixusers.remove(name)


def write_notebook(account: accounts.RunAccount, path: str, *cells: str, parameters: str = "",
                   kernel: str = "python3") -> Path:
    """A notebook in the owner's home, owned by the owner: a ``parameters`` cell, then ``cells``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(parameters)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    target = account.home / path
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))
    if account.uid is not None:
        os.chown(target, account.uid, account.gid)
    return target


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def runs_of(owner: str, schedule_id: int) -> list[dict]:
    return sorted(schedules.list_runs(owner, schedule_id, limit=1000), key=lambda r: r["fire_time"])


def final(owner: str, run_id: int, timeout: float = 90) -> dict:
    return wait_for(lambda: (r := schedules.get_run(owner, run_id))["status"] in
                    ("succeeded", "failed", "timed-out", "cancelled") and r, timeout, what=f"run {run_id} to end")


def output_text(owner: str, run_id: int) -> str:
    nb = json.loads(schedules.run_output(owner, run_id, "ipynb"))
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append("".join(o["text"]))
            elif o.get("output_type") == "error":
                out.append(f"{o['ename']}: {o['evalue']}")
    return "\n".join(out)


@pytest.fixture
def worker(sched):
    from alertlab.scheduler.worker import Worker

    w = Worker(slots=2)
    t = threading.Thread(target=w.run, daemon=True, name="test-worker")
    t.start()
    assert w.ready.wait(30), "the worker got no partitions"
    yield w
    w.stop()
    t.join(60)


@pytest.fixture
def service(sched):
    from alertlab.scheduler.service import SchedulerService

    s = SchedulerService()
    t = threading.Thread(target=s.run_forever, daemon=True, name="test-scheduler")
    t.start()
    assert s.ready.wait(30), "the scheduler service did not get ready"
    yield s
    s.stop()
    t.join(60)


class _Sink:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_sink(monkeypatch):
    """A local SMTP server (aiosmtpd) that keeps what it receives."""
    from aiosmtpd.controller import Controller

    sink, port = _Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("ALERTLAB_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ALERTLAB_SMTP_PORT", str(port))
    monkeypatch.setenv("ALERTLAB_SMTP_FROM", "scheduler@alertlab.test")
    yield sink
    controller.stop()


@pytest.fixture
def webhook_sink():
    """A local HTTP server; ``.posts`` holds the JSON bodies POSTed to it."""
    posts = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.posts = posts
    server.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield server
    server.shutdown()


def add_filter(owner: str, where_sql: str) -> int:
    with db.engine("alerts").begin() as conn:
        return conn.exec_driver_sql("INSERT INTO filters (owner, name, where_sql) VALUES (%s, %s, %s)",
                                    (owner, "test", where_sql)).lastrowid


def owner_processes(account: accounts.RunAccount) -> list:
    import psutil

    if account.uid is None:
        return []
    return [p for p in psutil.process_iter(["uids", "cmdline"]) if p.info["uids"] and
            p.info["uids"].real == account.uid]


# -- cron -----------------------------------------------------------------------------------------

def test_cron_fires_on_time_and_only_the_owner_sees_the_output(sched, make_owner, worker, service):
    alice, bob = make_owner("alice"), make_owner("bob")
    write_notebook(alice, "tick.ipynb", "print('fired for', alertlab_fire_time, 'as', __import__('getpass').getuser())",
                   parameters="alertlab_fire_time = None")
    s = schedules.create_schedule(alice.owner, "tick.ipynb", cron="*/3 * * * * *", kernel="python3")
    shown = [datetime.fromisoformat(t) for t in s["next_fire_times"]]
    assert len(shown) == 5 and all(t.second % 3 == 0 and t.microsecond == 0 for t in shown)
    assert [(b - a).total_seconds() for a, b in zip(shown, shown[1:])] == [3.0] * 4

    def three_done():
        done = [r for r in runs_of(alice.owner, s["id"]) if r["status"] == "succeeded"]
        return done[:3] if len(done) >= 3 else None

    done = wait_for(three_done, timeout=90, what="three cron runs")
    schedules.pause(alice.owner, s["id"])
    fired = [datetime.fromisoformat(r["fire_time"]) for r in runs_of(alice.owner, s["id"])]
    assert fired[0] == shown[0]  # the first fire time announced is the first one that ran
    assert all(t.second % 3 == 0 and t.microsecond == 0 for t in fired)
    assert [(b - a).total_seconds() for a, b in zip(fired, fired[1:])] == [3.0] * (len(fired) - 1)  # none missed
    for r in done:
        assert r["reason"] == "cron"
        started = datetime.fromisoformat(r["started"])
        # started soon after its fire time (generous: a loaded 2-core machine queues kernels)
        assert timedelta(0) <= started - datetime.fromisoformat(r["fire_time"]) < timedelta(seconds=30)
        text = output_text(alice.owner, r["id"])
        assert f"fired for {r['fire_time']} as {alice.user}" in text
        assert b"fired for" in schedules.run_output(alice.owner, r["id"], "html")

    # only alice sees them: for bob they do not exist
    assert schedules.list_runs(bob.owner) == [] and schedules.list_schedules(bob.owner) == []
    for call in (lambda: schedules.get_run(bob.owner, done[0]["id"]),
                 lambda: schedules.run_output(bob.owner, done[0]["id"], "html"),
                 lambda: schedules.get_schedule(bob.owner, s["id"]),
                 lambda: schedules.run_now(bob.owner, s["id"]),
                 lambda: schedules.cancel(bob.owner, done[0]["id"])):
        with pytest.raises(NotFound):
            call()


# -- alerts, end to end -------------------------------------------------------------------------

def test_matching_alert_runs_the_owners_notebook_as_the_owner_and_notifies(
        sched, fresh_alerts_db, make_owner, worker, service, smtp_sink, webhook_sink):
    from alertlab.ingest.runner import ingest_files

    path = ZTF_FILES[0]
    with open(path, "rb") as fh:
        alert = next(iter(fastavro.reader(fh)))
    object_id, candid = alert["objectId"], alert["candid"]
    alice = make_owner("alice")
    secret = uuid.uuid4().hex
    (alice.home / "secret.txt").write_text(secret)
    if alice.uid is not None:
        os.chown(alice.home / "secret.txt", alice.uid, alice.gid)
        os.chmod(alice.home / "secret.txt", 0o600)
    write_notebook(alice, "work/followup.ipynb",
                   "import getpass, os\n"
                   "print('object', objectId, 'detection', detectionId, 'filter', filter_id)\n"
                   "print('user', getpass.getuser(), 'secret', open(os.path.expanduser('~/secret.txt')).read())\n"
                   "print('matches', len(matches), matches[0]['kind'])\n"
                   "print('env', sorted(os.environ))",
                   parameters="objectId = None\ndetectionId = None\nfilter_id = None\nmatches = []")
    fid = add_filter(alice.owner, f"objectId = '{object_id}'")
    s = schedules.create_schedule(alice.owner, "work/followup.ipynb", on_filter=fid, kernel="python3",
                                  notify_on=["success", "failure", "match"], email="alice@example.org",
                                  webhook=webhook_sink.url)
    assert s["next_fire_times"] == [] and s["trigger_kind"] == "alert"

    totals = ingest_files([path])
    assert totals.alerts == 1

    run = wait_for(lambda: schedules.list_runs(alice.owner, s["id"]), timeout=60, what="the triggered run")[0]
    run = final(alice.owner, run["id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["reason"] == "alert"
    assert run["parameters"]["objectIds"] == [object_id] and run["parameters"]["detectionIds"] == [candid]
    text = output_text(alice.owner, run["id"])
    assert f"object {object_id} detection {candid} filter {fid}" in text
    assert f"user {alice.user} secret {secret}" in text      # her account, her private file
    assert "matches 1 filter" in text
    assert "ALERTLAB_DB_URL" not in text and "ALERTLAB_DB_READER_URL" not in text  # no credentials
    assert db.server_url().password not in text

    wait_for(lambda: len(smtp_sink.messages) >= 2, timeout=20, what="two e-mails (match, success)")
    subjects = [m.content.decode(errors="replace") for m in smtp_sink.messages]
    assert all(m.rcpt_tos == ["alice@example.org"] for m in smtp_sink.messages)
    assert any("matched 1 object" in t for t in subjects) and any("succeeded" in t for t in subjects)
    wait_for(lambda: len(webhook_sink.posts) >= 2, timeout=20, what="two webhook posts")
    assert all(set(p) == {"text"} for p in webhook_sink.posts)
    assert any(object_id in p["text"] for p in webhook_sink.posts)
    def inbox_with_both():  # the in-app row is written after the e-mail and the webhook (it records how they went)
        inbox = schedules.list_notifications(alice.owner)
        return inbox if {n["kind"] for n in inbox} >= {"match", "success"} else None

    inbox = wait_for(inbox_with_both, timeout=20, what="the match and success notifications in the inbox")
    assert {n["kind"] for n in inbox} == {"match", "success"}
    assert all(n["delivery"] == {"email": "sent", "webhook": "sent"} for n in inbox)

    # the same alert ingested again (at-least-once delivery) runs nothing more
    ingest_files([path])
    time.sleep(3)
    assert len(schedules.list_runs(alice.owner, s["id"])) == 1


def test_a_schedule_on_someone_elses_filter_is_forbidden(sched, fresh_alerts_db, make_owner):
    bobs = add_filter("bob-" + uuid.uuid4().hex[:6], "ndet > 1")
    with pytest.raises(ScheduleForbidden, match=f"filter {bobs} belongs to someone else"):
        schedules.create_schedule("carol", "n.ipynb", on_filter=bobs)
    with pytest.raises(ScheduleForbidden):
        schedules.never_again("carol", bobs, "ZTF1")
    # an administrator may
    assert schedules.create_schedule("carol", "n.ipynb", on_filter=bobs, admin=True)["alert_id"] == str(bobs)


# -- never again, windows, rate caps ------------------------------------------------------------

def _event(fid, obj, det, when=None):
    from alertlab.ingest import events

    e = events.build("filter", fid, obj, det, 60000.0 + det / 1e6, owner="x")
    if when is not None:
        e["ingest_time"] = when.isoformat()
    return e


def _flushed(trig, sid):
    """Flush the schedule's window now; the run's parameters, or None."""
    from alertlab.scheduler import ledger

    run_id = trig.flush(sid)
    return None if run_id is None else json.loads(ledger.get(run_id)["parameters"])


def _statuses(sid) -> dict:
    from alertlab.scheduler.store import engine

    with engine().connect() as conn:
        return {(r[0], r[1]): r[2] for r in conn.exec_driver_sql(
            "SELECT objectId, detectionId, status FROM schedule_events WHERE schedule_id = %s", (sid,))}


def test_an_alert_right_after_a_new_schedule_is_not_missed(sched, fresh_alerts_db):
    """The periodic refresh may not have run yet: the event itself makes the triggers look again."""
    from alertlab.scheduler.alerts import AlertTriggers

    fid = add_filter("erin", "ndet > 0")
    trig = AlertTriggers()
    trig.refresh()                      # knows no schedule on this filter yet
    s = schedules.create_schedule("erin", "a.ipynb", on_filter=fid)
    assert trig.record([_event(fid, "ZTFnew", 1)]) == 1
    assert _statuses(s["id"]) == {("ZTFnew", 1): "pending"}
    # events of sources nobody schedules on are still ignored
    assert trig.record([_event(fid + 1000, "ZTFnone", 2)]) == 0


def test_window_never_again_repeat_policies_and_rate_cap(sched, fresh_alerts_db):
    from alertlab.scheduler.alerts import AlertTriggers

    fid = add_filter("dora", "ndet > 0")
    trig = AlertTriggers()
    once = schedules.create_schedule("dora", "a.ipynb", on_filter=fid, window=1.5, repeat="once",
                                     max_runs_per_hour=3)
    every = schedules.create_schedule("dora", "b.ipynb", on_filter=fid, repeat="every", max_runs_per_hour=2)
    trig.refresh()

    # an old event (from before the schedules existed) is ignored; a duplicate is recorded once
    assert trig.record([_event(fid, "ZTFold", 1, when=datetime.now(timezone.utc) - timedelta(hours=1))]) == 0
    assert trig.record([_event(fid, "ZTFa", 10), _event(fid, "ZTFa", 10)]) == 2   # one per schedule
    time.sleep(0.5)
    trig.record([_event(fid, "ZTFb", 20)])
    # the window: "every" (no window) is due now, "once" only 1.5 s after its first event
    assert set(trig.due()) == {every["id"]}
    assert _flushed(trig, every["id"])["objectIds"] == ["ZTFa", "ZTFb"]
    time.sleep(1.2)
    assert set(trig.due()) == {once["id"]}
    params = _flushed(trig, once["id"])
    assert params["objectIds"] == ["ZTFa", "ZTFb"] and params["detectionIds"] == [10, 20]
    assert params["filter_id"] == fid and params["objectId"] == "ZTFa" and len(params["matches"]) == 2

    # never again: dora marks ZTFb; its next alert runs nothing, ZTFc's does
    schedules.never_again("dora", fid, "ZTFb", note="a known variable")
    trig.record([_event(fid, "ZTFb", 21), _event(fid, "ZTFc", 30)])
    assert _flushed(trig, every["id"])["objectIds"] == ["ZTFc"]
    assert _statuses(every["id"])[("ZTFb", 21)] == "never-again"
    # once per object: ZTFa again is a repeat, ZTFc is new
    trig.record([_event(fid, "ZTFa", 11)])
    time.sleep(1.6)
    assert _flushed(trig, once["id"])["objectIds"] == ["ZTFc"]
    assert _statuses(once["id"])[("ZTFa", 11)] == "repeat"

    # rate cap: "every" has had 2 runs this hour, its limit; the third window is dropped, with one notice
    trig.record([_event(fid, "ZTFd", 40)])
    assert _flushed(trig, every["id"]) is None
    assert _statuses(every["id"])[("ZTFd", 40)] == "rate-limited"
    trig.record([_event(fid, "ZTFe", 50)])
    assert _flushed(trig, every["id"]) is None
    notices = [n for n in schedules.list_notifications("dora") if n["kind"] == "rate-limited"]
    assert len(notices) == 1 and "limit" in notices[0]["title"]

    # allow again, and "once per object per N days"
    assert schedules.allow_again("dora", fid, "ZTFb")
    days = schedules.create_schedule("dora", "c.ipynb", on_filter=fid, repeat="days", repeat_days=2 / 86400)
    trig.refresh()
    trig.record([_event(fid, "ZTFb", 22)])
    assert _flushed(trig, days["id"])["objectIds"] == ["ZTFb"]
    trig.record([_event(fid, "ZTFb", 23)])
    assert _flushed(trig, days["id"]) is None          # within 2 seconds: a repeat
    time.sleep(2.1)
    trig.record([_event(fid, "ZTFb", 24)])
    assert _flushed(trig, days["id"])["objectIds"] == ["ZTFb"]  # 2 seconds later: runs again

    # a paused schedule records nothing more
    schedules.pause("dora", days["id"])
    trig.refresh()
    trig.record([_event(fid, "ZTFb", 25)])
    assert ("ZTFb", 25) not in _statuses(days["id"])


# -- crashes --------------------------------------------------------------------------------------

def _state_pid(name: str) -> int:
    return ServiceState(name).pid()


def _up() -> None:
    subprocess.run([ALERTLAB, "scheduler", "up"], check=True, capture_output=True, timeout=120)


def test_kill_9_during_a_run_loses_no_due_run_and_runs_none_twice(sched, make_owner):
    if any(ServiceState(n).running() for n in ("scheduler", "scheduler-worker")):
        pytest.fail("a scheduler is already running in this ALERTLAB_HOME: stop it (alertlab scheduler down) "
                    "or run the tests with another ALERTLAB_HOME")
    every = 3
    alice = make_owner("alice")
    write_notebook(alice, "tick.ipynb",
                   "open('ticks.log', 'a').write(alertlab_fire_time + '\\n')",
                   "import time\ntime.sleep(2)",
                   parameters="alertlab_fire_time = None")
    s = schedules.create_schedule(alice.owner, "tick.ipynb", cron=f"*/{every} * * * * *", kernel="python3",
                                  retries=0)
    ticks = alice.home / "ticks.log"
    _up()
    try:
        victim = wait_for(lambda: next((r for r in runs_of(alice.owner, s["id"]) if r["status"] == "running"
                                        and ticks.exists() and r["fire_time"] in ticks.read_text()), None),
                          timeout=60, what="a run in the middle of its notebook")
        for name in ("scheduler", "scheduler-worker"):
            os.kill(_state_pid(name), signal.SIGKILL)
        killed_at = datetime.now(timezone.utc)
        # the notebook and its kernel die with the worker (no orphan keeps running as alice)
        wait_for(lambda: not owner_processes(alice), timeout=10, what="alice's processes to end")
        time.sleep(max(0.0, 2.5 * every - (datetime.now(timezone.utc) - killed_at).total_seconds()))
        restarted_at = datetime.now(timezone.utc)
        _up()
        ready_at = datetime.now(timezone.utc)
        wait_for(lambda: len([r for r in runs_of(alice.owner, s["id"]) if r["status"] == "succeeded"
                              and datetime.fromisoformat(r["fire_time"]) > ready_at]) >= 2,
                 timeout=60, what="runs after the restart")
        schedules.pause(alice.owner, s["id"])
        wait_for(lambda: all(r["status"] not in ("running", "queued") for r in runs_of(alice.owner, s["id"])),
                 timeout=120, what="the last run to end")
    finally:
        subprocess.run([ALERTLAB, "scheduler", "down"], capture_output=True, timeout=120)

    runs = runs_of(alice.owner, s["id"])
    by_time = {datetime.fromisoformat(r["fire_time"]): r for r in runs}
    killed = schedules.get_run(alice.owner, victim["id"])
    assert killed["status"] == "failed" and "worker died" in killed["error"]
    # While it was down, two or more fire times passed: they are caught up as one run (coalesced),
    # the latest due, possibly merged with one that fell while it was starting again.
    down = _ticks(killed_at, restarted_at, every)
    assert len(down) >= 2
    caught_up = [t for t in _ticks(killed_at, ready_at, every) if t in by_time]
    assert len([t for t in caught_up if t in down]) <= 1, "missed fire times were each run, not coalesced"
    assert caught_up and by_time[caught_up[0]]["status"] == "succeeded", "the missed fire time was lost"
    # every fire time before the kill and after the restart has its run (one that fell in the last second
    # before the kill may not have been recorded yet: it is then due while down, and caught up with those)
    expected = [t for t in _ticks(min(by_time) - timedelta(seconds=1), max(by_time), every)
                if not killed_at - timedelta(seconds=1) < t <= ready_at]
    assert [t for t in expected if t not in by_time] == []
    # none ran twice: every fire time reached the notebook at most once
    lines = ticks.read_text().split()
    assert len(lines) == len(set(lines))
    for r in runs:
        if r["status"] == "succeeded":
            assert lines.count(r["fire_time"]) == 1
    assert not owner_processes(alice)
    # and the dead worker's run folders are gone
    assert not [f for f in os.listdir(tempfile.gettempdir())
                if f.startswith((f"alertlab-run-{killed['id']}-", f"alertlab-run-{victim['id']}-"))]


def _ticks(after: datetime, until: datetime, every: int) -> list[datetime]:
    t = after.replace(microsecond=0) + timedelta(seconds=1)
    out = []
    while t <= until:
        if t.second % every == 0:
            out.append(t)
        t += timedelta(seconds=1)
    return out


# -- runaways and failures ----------------------------------------------------------------------

def test_runaway_notebooks_are_stopped_and_failures_keep_their_output(sched, make_owner, worker):
    alice = make_owner("alice")
    write_notebook(alice, "spin.ipynb", "print('spinning', flush=True)\nwhile True:\n    pass")
    write_notebook(alice, "hog.ipynb", "hog = bytearray(8 * 1024 ** 3)")
    write_notebook(alice, "boom.ipynb", "print('before')", "1 / 0", "print('never')")
    spin = schedules.create_schedule(alice.owner, "spin.ipynb", cron="0 0 1 1 *", timeout=15, kernel="python3")
    hog = schedules.create_schedule(alice.owner, "hog.ipynb", cron="0 0 1 1 *", memory_mb=1536, kernel="python3")
    boom = schedules.create_schedule(alice.owner, "boom.ipynb", cron="0 0 1 1 *", kernel="python3")
    gone = schedules.create_schedule(alice.owner, "nowhere/missing.ipynb", cron="0 0 1 1 *")
    runs = {k: schedules.run_now(alice.owner, v["id"])["id"]
            for k, v in (("spin", spin), ("hog", hog), ("boom", boom), ("gone", gone))}
    out = {k: final(alice.owner, rid, timeout=120) for k, rid in runs.items()}

    assert out["spin"]["status"] == "timed-out"
    assert "timed out after 15s" in out["spin"]["error"]
    assert "spinning" in output_text(alice.owner, runs["spin"])  # what it printed before being killed
    assert out["hog"]["status"] == "failed"
    assert "MemoryError" in out["hog"]["error"] and "memory limit is 1536 MB" in out["hog"]["error"]
    assert "MemoryError" in output_text(alice.owner, runs["hog"])
    assert out["boom"]["status"] == "failed"
    assert out["boom"]["error"].startswith("ZeroDivisionError: division by zero")
    text = output_text(alice.owner, runs["boom"])
    assert "before" in text and "ZeroDivisionError" in text and "never" not in text
    assert b"ZeroDivisionError" in schedules.run_output(alice.owner, runs["boom"], "html")
    assert out["gone"]["status"] == "failed"
    assert out["gone"]["error"].startswith("notebook not found: nowhere/missing.ipynb")
    assert not owner_processes(alice)  # the spinning kernel is gone too


def test_cancel_a_running_run_and_retries(sched, make_owner, worker):
    alice = make_owner("alice")
    write_notebook(alice, "slow.ipynb", "open('started', 'w').write('x')\nimport time\ntime.sleep(60)")
    write_notebook(alice, "flaky.ipynb",
                   "import os\nn = len(open('tries').read()) if os.path.exists('tries') else 0\n"
                   "open('tries', 'a').write('x')\nassert n >= 1, 'first try fails'")
    slow = schedules.create_schedule(alice.owner, "slow.ipynb", cron="0 0 1 1 *", kernel="python3")
    flaky = schedules.create_schedule(alice.owner, "flaky.ipynb", cron="0 0 1 1 *", kernel="python3", retries=2)
    run = schedules.run_now(alice.owner, slow["id"])
    wait_for(lambda: (alice.home / "started").exists(), timeout=60, what="the slow notebook to start")
    assert schedules.cancel(alice.owner, run["id"])["status"] == "running"  # asked; the worker kills it
    cancelled = final(alice.owner, run["id"], timeout=20)
    assert cancelled["status"] == "cancelled" and "killed" in cancelled["error"]

    retried = final(alice.owner, schedules.run_now(alice.owner, flaky["id"])["id"])
    assert retried["status"] == "succeeded" and retried["attempt"] == 2
    assert (alice.home / "tries").read_text() == "xx"


SCHEDULER_TABLES = {"schedules", "runs", "run_outputs", "schedule_events", "schedule_objects", "never_again",
                    "notifications"}


def test_every_scheduler_table_and_column_is_documented(sched):
    from conftest import ROOT

    text = (ROOT / "docs" / "scheduler.md").read_text()
    with db.engine("app").connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql("SHOW TABLES") if r[0] in SCHEDULER_TABLES]
        missing = []
        for table in tables:
            if f"### {table}" not in text:
                missing.append(table)
            section = text.split(f"### {table}", 1)[-1].split("###", 1)[0]
            missing += [f"{table}.{c[0]}" for c in conn.exec_driver_sql(f"SHOW COLUMNS FROM `{table}`")
                        if f"`{c[0]}`" not in section]
    assert set(tables) == SCHEDULER_TABLES
    assert not missing, f"undocumented in docs/scheduler.md: {missing}"
