"""`alertlab hub ...`: start, stop and administer the hub from the command line."""

from __future__ import annotations

import json
import sys


def add_commands(sub) -> None:
    hub = sub.add_parser("hub", help="start, stop or administer JupyterHub, the front door")
    hsub = hub.add_subparsers(dest="action", required=True, metavar="ACTION")
    hsub.add_parser("up", help="start the hub and its proxy (idempotent) and print its URL").set_defaults(func=up)
    hsub.add_parser("down", help="stop users' servers, the hub and its proxy").set_defaults(func=down)
    hsub.add_parser("restart", help="restart the hub only: users' servers and sessions carry on").set_defaults(
        func=restart)
    st = hsub.add_parser("status", help="show whether the hub runs and answers")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=status)

    add = hsub.add_parser("adduser", help="create an approved account (password read from stdin, or generated)")
    add.add_argument("name")
    add.add_argument("--email")
    add.add_argument("--admin", action="store_true", help="make the user a hub admin")
    add.add_argument("--group", action="append", default=[], help="add the user to this group (repeatable)")
    add.set_defaults(func=adduser)

    ga = hsub.add_parser("group-admin", help="let a user add and remove members of a group (restarts the hub)")
    ga.add_argument("group")
    ga.add_argument("user")
    ga.add_argument("--remove", action="store_true", help="take the right away instead")
    ga.set_defaults(func=group_admin)

    tok = hsub.add_parser("token", help="print a new API token for a user (for scripts; users can make their own)")
    tok.add_argument("user")
    tok.add_argument("--note", default="made with alertlab hub token")
    tok.add_argument("--expires-in", type=int, help="seconds until the token expires")
    tok.set_defaults(func=token)


def up(args) -> int:
    from alertlab.hub import control

    info = control.up()
    print(f"hub: running (pid {info['pid']}, proxy pid {info['proxy_pid']})", file=sys.stderr)
    print(info["url"])
    return 0


def down(args) -> int:
    from alertlab.hub import control

    print(f"hub: {'stopped' if control.down() else 'was not running'}", file=sys.stderr)
    return 0


def restart(args) -> int:
    from alertlab.hub import control

    info = control.restart()
    print(f"hub: restarted (pid {info['pid']})", file=sys.stderr)
    return 0


def status(args) -> int:
    from alertlab.hub import control

    row = control.status()
    if args.json:
        print(json.dumps(row))
    else:
        state = "running" if row["running"] else "stopped"
        print(f"hub: {state} {row['url']} pid {row['pid']} proxy={'running' if row['proxy_running'] else 'stopped'}"
              f" answers={row['answers']}")
    return 0 if row["running"] and row["answers"] else 3


def adduser(args) -> int:
    import secrets

    from alertlab.hub import accounts, control

    control.require_running()
    generated = sys.stdin.isatty()
    password = secrets.token_urlsafe(12) if generated else sys.stdin.readline().rstrip("\n")
    accounts.ensure_user(args.name, password, email=args.email, admin=args.admin or None, groups=args.group)
    print(f"{args.name}: ready" + (f", password {password}" if generated else ""), file=sys.stderr)
    return 0


def group_admin(args) -> int:
    from alertlab.hub import control, groupadmins

    table = groupadmins.set_admin(args.group, args.user, admin=not args.remove)
    print(f"admins of {args.group}: {', '.join(table.get(args.group, [])) or 'none'}", file=sys.stderr)
    if control.state().running():
        control.restart()
        print("hub: restarted to apply it", file=sys.stderr)
    return 0


def token(args) -> int:
    from alertlab.hub import control
    from alertlab.hub.hubapi import HubAPI

    control.require_running()
    print(HubAPI().new_token(args.user, note=args.note, expires_in=args.expires_in))
    return 0
