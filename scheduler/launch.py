"""The process a run starts as its owner: limits first, then papermill.

``python -m alertlab.scheduler.launch SPEC.json`` (started by the worker, already
switched to the owner's account, in a new session):

1. asks the kernel to kill it if the worker dies (PR_SET_PDEATHSIG, set here
   and not before the switch of account, which would clear it); the kernel it
   starts notices its parent is gone (ipykernel's parent poller) and exits;
2. caps its address space (RLIMIT_AS, inherited by the kernel), so a runaway
   notebook gets a MemoryError instead of taking the machine;
3. runs papermill, which writes the executed notebook even when a cell
   raises (with the traceback in the failing cell).

The last line on stderr starting with ``alertlab-run:`` says what went wrong,
for the run record. Exit status: 0 succeeded, 1 a cell raised, 2 anything else."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
MARK = "alertlab-run:"


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the worker died before the call above
        os._exit(3)


def _limit_memory(megabytes: int | None) -> None:
    if megabytes:
        limit = int(megabytes) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _say(message: str) -> None:
    print(f"{MARK} {' '.join(str(message).split())[:2000]}", file=sys.stderr, flush=True)


def _skip_slow_optional_imports() -> None:
    """jsonschema (via nbformat's validator) imports the optional rfc3987_syntax, which builds a
    parser grammar at import: 1.2 s of every run, for IRI formats that notebook schemas never use.
    jsonschema treats the module as absent (its import is optional), so say it is."""
    sys.modules.setdefault("rfc3987_syntax", None)


def main(argv: list[str]) -> int:
    with open(argv[0]) as fh:
        spec = json.load(fh)
    _die_with_parent(int(spec["parent"]))
    _limit_memory(spec.get("memory_mb"))
    _skip_slow_optional_imports()
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError

        papermill.execute_notebook(spec["input"], spec["output"], parameters=spec["parameters"],
                                   kernel_name=spec["kernel"], cwd=spec["cwd"], progress_bar=False,
                                   log_output=False, request_save_on_cell_execute=True,
                                   start_timeout=120)
    except PapermillExecutionError as exc:
        _say(f"{exc.ename}: {exc.evalue} (in cell {exc.exec_count})")
        return 1
    except MemoryError:
        _say("MemoryError: papermill itself ran out of memory")
        return 2
    except FileNotFoundError as exc:
        _say(f"notebook not found: {exc.filename or exc}")
        return 2
    except Exception as exc:  # a kernel that died or never started, a notebook that is not JSON, ...
        _say(f"{type(exc).__name__}: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
