"""Start a long-running `alertlab` command detached, as core/demo.py starts the ingest.

For Ansible: ``alertlab-detach.py NAME [--restart] -- ARGV...`` runs under the venv's Python
with the host's settings in the environment. The process is recorded like every AlertLab
service ($ALERTLAB_HOME/NAME/state.json, its log in $ALERTLAB_HOME/logs/NAME.log), so
`alertlab demo --down` stops it. It is (re)started when it is not running, when its command
line differs from ARGV, or with --restart (the settings changed). Prints one JSON line,
{"changed": bool, "pid": int}; exits 1 with the log's tail if the process dies at once."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

SETTLE_SECONDS = 3.0  # a process that fails on its settings (no Kafka, bad URL) exits within this


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(usage="%(prog)s NAME [--restart] -- COMMAND...",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the service name (state under $ALERTLAB_HOME/NAME)")
    parser.add_argument("--restart", action="store_true", help="restart it if it runs")
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the command after --")
    cut = argv.index("--")
    args, command = parser.parse_args(argv[:cut]), argv[cut + 1:]

    from alertlab.core.services.process import ServiceState, log_path, start, stop

    state = ServiceState(args.name)
    if state.running():
        if not args.restart and state.load().get("argv") == command:
            print(json.dumps({"changed": False, "pid": state.pid()}))
            return 0
        stop(state, timeout=60)
    pid = start(state, command, env=dict(os.environ))
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline and state.running():
        time.sleep(0.2)
    if not state.running():
        tail = log_path(args.name).read_text(errors="replace").strip().splitlines()[-5:]
        print(f"{args.name} exited at once: " + " | ".join(tail), file=sys.stderr)
        return 1
    print(json.dumps({"changed": True, "pid": pid}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
