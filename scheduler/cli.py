"""`alertlab scheduler run|worker|up|down|status` (the services) and
`alertlab schedule add|list|runs|run-now|pause|resume|delete|cancel` (schedules
from the command line, for administrators: the CLI holds database
credentials, so it acts for any owner given with --owner)."""

from __future__ import annotations

import json
import logging
import os
import sys

SERVICE, WORKER = "scheduler", "scheduler-worker"


def add_commands(sub) -> None:
    sch = sub.add_parser("scheduler", help="the scheduler service and its run workers")
    ssub = sch.add_subparsers(dest="action", required=True, metavar="ACTION")
    ssub.add_parser("run", help="run the scheduler service in the foreground (time and alert triggers)"
                    ).set_defaults(func=run_service)
    w = ssub.add_parser("worker", help="run a worker in the foreground (executes queued notebook runs)")
    w.add_argument("--slots", type=int, help="runs at once (default ALERTLAB_SCHEDULER_WORKERS)")
    w.set_defaults(func=run_worker)
    ssub.add_parser("up", help="start the service and one worker in the background (idempotent)"
                    ).set_defaults(func=up)
    ssub.add_parser("down", help="stop them (runs in progress go back to the queue)").set_defaults(func=down)
    st = ssub.add_parser("status", help="show whether the service and the worker run")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=status)

    s = sub.add_parser("schedule", help="schedules of notebooks (as an administrator: --owner)")
    s2 = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = s2.add_parser("add", help="schedule a notebook (a path in the owner's home)")
    add.add_argument("notebook")
    add.add_argument("--owner", required=True)
    trig = add.add_mutually_exclusive_group(required=True)
    trig.add_argument("--cron", help="five fields, e.g. '0 9 * * *'")
    trig.add_argument("--interval", type=float, help="seconds between runs")
    trig.add_argument("--on-filter", type=int, metavar="ID")
    trig.add_argument("--on-watchlist", type=int, metavar="ID")
    trig.add_argument("--on-area", type=int, metavar="ID")
    trig.add_argument("--on-annotator", metavar="NAME")
    add.add_argument("--timezone", default="UTC")
    add.add_argument("--parameters", help="a JSON object")
    add.add_argument("--kernel")
    add.add_argument("--name")
    add.add_argument("--timeout", type=int, default=3600)
    add.add_argument("--retries", type=int, default=0)
    add.add_argument("--window", type=float, default=0, help="alert triggers: collection window, seconds")
    add.add_argument("--max-runs-per-hour", type=int, default=10)
    add.add_argument("--repeat", choices=["every", "once", "days"], default="every")
    add.add_argument("--repeat-days", type=float)
    add.add_argument("--notify-on", default="failure", help="comma-separated: success,failure,match")
    add.add_argument("--email", help="comma-separated addresses")
    add.add_argument("--webhook")
    add.set_defaults(func=schedule_add)
    ls = s2.add_parser("list", help="list the owner's schedules")
    ls.add_argument("--owner", required=True)
    ls.set_defaults(func=schedule_list)
    runs = s2.add_parser("runs", help="list the owner's runs")
    runs.add_argument("--owner", required=True)
    runs.add_argument("--schedule", type=int)
    runs.add_argument("--status")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(func=schedule_runs)
    for name, help_ in (("run-now", "queue a run at once"), ("pause", "stop triggering"),
                        ("resume", "trigger again"), ("delete", "delete with its runs")):
        p = s2.add_parser(name, help=help_)
        p.add_argument("id", type=int)
        p.add_argument("--owner", required=True)
        p.set_defaults(func=schedule_action, verb=name)
    c = s2.add_parser("cancel", help="cancel a queued or running run")
    c.add_argument("run_id", type=int)
    c.add_argument("--owner", required=True)
    c.set_defaults(func=schedule_cancel)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def run_service(args) -> int:
    import signal

    from alertlab.core.services.process import ServiceState
    from alertlab.scheduler.service import SchedulerService

    _logging()
    service = SchedulerService()
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    service.started_hook = lambda: ServiceState(SERVICE).save(ready_pid=os.getpid())
    service.run_forever()
    return 0


def run_worker(args) -> int:
    import signal

    from alertlab.core.services.process import ServiceState
    from alertlab.scheduler.worker import Worker

    _logging()
    w = Worker(slots=args.slots)
    signal.signal(signal.SIGTERM, w.stop)
    signal.signal(signal.SIGINT, w.stop)
    w.on_ready = lambda: ServiceState(WORKER).save(ready_pid=os.getpid())
    w.run()
    return 0


def _argv(*words: str) -> list[str]:
    return [sys.executable, "-m", "alertlab.core.cli", *words]


def up(args) -> int:
    from alertlab.core.services.process import ServiceState, start, wait_until

    for name, words in ((SERVICE, ("scheduler", "run")), (WORKER, ("scheduler", "worker"))):
        st = ServiceState(name)
        if st.running():
            print(f"{name}: already running (pid {st.pid()})", file=sys.stderr)
            continue
        st.save(ready_pid=None)
        pid = start(st, _argv(*words), env=dict(os.environ))
        wait_until(lambda: st.load().get("ready_pid") == pid, st, "get ready")
        print(f"{name}: running (pid {pid})", file=sys.stderr)
    return 0


def down(args) -> int:
    from alertlab.core.services.process import ServiceState, stop

    for name in (WORKER, SERVICE):
        stopped = stop(ServiceState(name), timeout=60)
        print(f"{name}: {'stopped' if stopped else 'was not running'}", file=sys.stderr)
    return 0


def status(args) -> int:
    from alertlab.core.services.process import ServiceState

    rows = []
    for name in (SERVICE, WORKER):
        st = ServiceState(name)
        rows.append({"service": name, "running": st.running(), "pid": st.pid() if st.running() else None})
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['service']}: {'running pid ' + str(r['pid']) if r['running'] else 'stopped'}")
    return 0 if all(r["running"] for r in rows) else 3


def _print(value) -> None:
    print(json.dumps(value, indent=1, default=str))


def schedule_add(args) -> int:
    from alertlab.scheduler import schedules

    s = schedules.create_schedule(
        args.owner, args.notebook, cron=args.cron, timezone=args.timezone, interval=args.interval,
        on_filter=args.on_filter, on_watchlist=args.on_watchlist, on_area=args.on_area,
        on_annotator=args.on_annotator, parameters=args.parameters, kernel=args.kernel, name=args.name,
        timeout=args.timeout, retries=args.retries, window=args.window, max_runs_per_hour=args.max_runs_per_hour,
        repeat=args.repeat, repeat_days=args.repeat_days, notify_on=args.notify_on, email=args.email,
        webhook=args.webhook, admin=True)
    _print(s)
    return 0


def schedule_list(args) -> int:
    from alertlab.scheduler import schedules

    for s in schedules.list_schedules(args.owner):
        trigger = s["cron"] or (f"every {s['interval_seconds']:g}s" if s["interval_seconds"] else
                                f"on {s['alert_kind']} {s['alert_id']}")
        state = "enabled" if s["enabled"] else "paused"
        print(f"{s['id']:>5}  {s['name']:<24} {s['notebook']:<32} {trigger:<20} {state}")
    return 0


def schedule_runs(args) -> int:
    from alertlab.scheduler import schedules

    for r in schedules.list_runs(args.owner, args.schedule, args.status, limit=args.limit):
        print(f"{r['id']:>6}  schedule {r['schedule_id']:<5} {r['reason']:<8} {r['fire_time']}  "
              f"{r['status']:<10} {r['error'] or ''}")
    return 0


def schedule_action(args) -> int:
    from alertlab.scheduler import schedules

    fn = {"run-now": schedules.run_now, "pause": schedules.pause, "resume": schedules.resume,
          "delete": schedules.delete_schedule}[args.verb]
    result = fn(args.owner, args.id)
    if result is not None:
        _print(result)
    return 0


def schedule_cancel(args) -> int:
    from alertlab.scheduler import schedules

    _print(schedules.cancel(args.owner, args.run_id))
    return 0
