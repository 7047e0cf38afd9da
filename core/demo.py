"""`alertlab demo`: bring AlertLab up on this machine from nothing, re-runnably.

Ordered named steps (JupyterHub's ``init_*`` style): each is idempotent, so a
second `make demo` only checks that everything is there. ``--down`` stops it."""

from __future__ import annotations

import os
import sys

STEPS = []


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


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="bring AlertLab up on this machine (what `make demo` runs)")
    p.add_argument("--down", action="store_true", help="stop everything the demo started")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.down:
        from alertlab.core.cli import services_down

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
