"""The `alertlab` command line.

Each component contributes its sub-commands through a ``add_commands(sub)``
function listed in ``COMMAND_MODULES``; heavy imports happen inside the
handlers, so `alertlab --help` is quick. Errors meant for people
(AlertLabError) are printed as one line; a traceback only with --debug."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from alertlab.core import settings
from alertlab.core.errors import AlertLabError

COMMAND_MODULES = [
    "alertlab.core.cli",
    "alertlab.core.demo",
    "alertlab.ingest.cli",
    "alertlab.hub.cli",
    "alertlab.scheduler.cli",
]


def add_commands(sub) -> None:
    services = sub.add_parser("services", help="start, stop or show the private MariaDB and Kafka")
    ssub = services.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = ssub.add_parser("up", help="start MariaDB and Kafka (idempotent) and print export lines")
    up.add_argument("--only", choices=["mariadb", "kafka"], help="start only this service")
    up.set_defaults(func=services_up)
    ssub.add_parser("down", help="stop the services, leaving no process behind").set_defaults(func=services_down)
    st = ssub.add_parser("status", help="show whether each service runs and answers")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=services_status)

    dbp = sub.add_parser("db", help="database schema")
    dsub = dbp.add_subparsers(dest="action", required=True, metavar="ACTION")
    dsub.add_parser("init", help="bring both databases to the current schema (idempotent)").set_defaults(func=db_init)
    dsub.add_parser("status", help="show each database's schema revision").set_defaults(func=db_status)

    sp = sub.add_parser("settings", help="list every setting with its current value and help")
    sp.set_defaults(func=show_settings)


def services_up(args) -> int:
    from alertlab.core.services import kafka, mariadb

    lines = []
    if args.only in (None, "mariadb"):
        info = mariadb.up()
        print(f"mariadb: running (pid {info['pid']}, port {info['port']})", file=sys.stderr)
        lines.append(f"export ALERTLAB_DB_URL='{info['url']}'")
    if args.only in (None, "kafka"):
        info = kafka.up()
        print(f"kafka: running (pid {info['pid']}, {info['bootstrap']})", file=sys.stderr)
        lines.append(f"export ALERTLAB_KAFKA='{info['bootstrap']}'")
        lines.append(f"export ALERTLAB_KAFKA_USERNAME='{info['username']}'")
        lines.append(f"export ALERTLAB_KAFKA_PASSWORD='{info['password']}'")
    print("\n".join(lines))
    return 0


def services_down(args) -> int:
    from alertlab.core.services import kafka, mariadb

    for svc in (kafka, mariadb):
        stopped = svc.down()
        print(f"{svc.NAME}: {'stopped' if stopped else 'was not running'}", file=sys.stderr)
    return 0


def services_status(args) -> int:
    from alertlab.core.services import kafka, mariadb

    rows = [mariadb.status(), kafka.status()]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            state = "running" if r["running"] else "stopped"
            extra = f" pid {r['pid']} port {r['port']} answers={r['answers']}" if r["running"] else ""
            print(f"{r['service']}: {state}{extra}")
    return 0 if all(r["running"] and r["answers"] for r in rows) else 3


def db_init(args) -> int:
    from alertlab.core import migrations

    for database in migrations.DATABASES:
        migrations.upgrade(database)
        print(f"{database}: at {migrations.current(database)}", file=sys.stderr)
    return 0


def db_status(args) -> int:
    from alertlab.core import migrations

    ok = True
    for database in migrations.DATABASES:
        cur, head = migrations.current(database), migrations.head(database)
        ok &= cur == head
        print(f"{database}: {cur or 'empty'} (head {head})")
    return 0 if ok else 3


def show_settings(args) -> int:
    for name, s in settings.SETTINGS.items():
        print(f"{name}={os.environ.get(name, '')!s:<20}  default {s.default!r}: {s.help}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertlab", description="AlertLab: notebooks over astronomical alert streams")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or _debug_env()
    try:
        # children (hub, services, workers) may run in other directories: give them the absolute home
        os.environ["ALERTLAB_HOME"] = str(settings.home())
        return args.func(args) or 0
    except AlertLabError as exc:
        if debug:
            raise
        print(f"alertlab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("alertlab: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if debug:
            raise
        print(f"alertlab: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def _debug_env() -> bool:
    try:
        return settings.get("ALERTLAB_DEBUG")
    except AlertLabError:
        return False


if __name__ == "__main__":
    sys.exit(main())
