"""Execute one claimed run: papermill as the owner, watched by the worker.

The worker (root, or the service account) prepares a private run folder,
starts ``alertlab.scheduler.launch`` as the owner in a new session with a
clean environment (no database credentials: PATH, HOME, USER, the run's ids
and, with a hub, a short-lived hub token), and watches it: the wall-clock
timeout and a cancel request kill the whole process tree (the launcher's
process group and the kernel's own session); a heartbeat tells the ledger
the worker is alive. Afterwards it reads the executed notebook (refusing
symlinks and files the owner does not own) and renders its HTML."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from alertlab.core import settings
from alertlab.scheduler import accounts, ledger, tokens
from alertlab.scheduler.launch import MARK
from alertlab.scheduler.store import iso

log = logging.getLogger(__name__)
MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024
INTERRUPT_GRACE = 5.0  # seconds between interrupting a timed-out kernel and killing everything
LANG = "C.UTF-8"


@dataclass
class Outcome:
    status: str                  # a final status, or "requeue" (the worker is stopping) or "gone"
    error: str | None = None
    note: str | None = None
    ipynb: bytes | None = None
    html: bytes | None = None


def memory_limit(run: dict) -> int:
    """The run's memory limit in MB: the schedule's, capped by ALERTLAB_RUN_MEMORY_MB."""
    ceiling = settings.get("ALERTLAB_RUN_MEMORY_MB")
    asked = run.get("memory_mb")
    return min(int(asked), ceiling) if asked else ceiling


def run_parameters(run: dict) -> dict:
    params = json.loads(run["parameters"]) if isinstance(run["parameters"], str) else dict(run["parameters"])
    params.update(alertlab_run_id=run["id"], alertlab_schedule_id=run["schedule_id"],
                  alertlab_fire_time=iso(run["fire_time"]), alertlab_reason=run["reason"])
    return params


def interrupt_kernel(pid: int) -> None:
    """SIGINT to the kernel (the launcher's descendants in another process group), as the
    notebook's Interrupt button does: the running cell stops with KeyboardInterrupt."""
    try:
        import psutil

        for child in psutil.Process(pid).children(recursive=True):
            try:
                if os.getpgid(child.pid) != pid:
                    os.kill(child.pid, signal.SIGINT)
            except (ProcessLookupError, PermissionError):
                pass
    except Exception:
        pass


def kill_tree(pid: int) -> None:
    """SIGKILL the launcher's process group and every descendant's group (the kernel has its own)."""
    try:
        import psutil

        groups = set()
        for child in psutil.Process(pid).children(recursive=True):
            try:
                groups.add(os.getpgid(child.pid))
            except ProcessLookupError:
                pass
    except Exception:
        groups = set()
    groups.add(pid)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Execution:
    """One attempt of one run; ``run()`` blocks until it is over."""

    def __init__(self, run: dict, worker: str, stopping=lambda: False):
        self.run_row = run
        self.worker = worker
        self.stopping = stopping
        self.notes: list[str] = []

    def run(self) -> Outcome:
        run = self.run_row
        try:
            account = accounts.for_owner(run["owner"])
        except Exception as exc:
            return Outcome("failed", f"could not prepare {run['owner']}'s account: {exc}")
        if account.note:
            self.notes.append(account.note)
        notebook = accounts.notebook_path(account, run["notebook"])
        if not os.path.lexists(notebook):
            return Outcome("failed", f"notebook not found: {run['notebook']} (in {run['owner']}'s home)",
                           self._note())
        folder = Path(tempfile.mkdtemp(prefix=ledger.run_folder_prefix(run["id"])))
        try:
            return self._in(folder, account, notebook)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _note(self) -> str | None:
        return "; ".join(self.notes) or None

    def _in(self, folder: Path, account: accounts.RunAccount, notebook: Path) -> Outcome:
        run = self.run_row
        timeout = float(run.get("timeout_seconds") or 3600)
        memory = memory_limit(run)
        output = folder / "output.ipynb"
        spec = {"parent": os.getpid(), "input": str(notebook), "output": str(output),
                "parameters": run_parameters(run), "kernel": run["kernel"], "cwd": str(notebook.parent),
                "memory_mb": memory}
        (folder / "spec.json").write_text(json.dumps(spec, default=str))
        if account.uid is not None:
            os.chown(folder, account.uid, account.gid)
            os.chown(folder / "spec.json", account.uid, account.gid)
        token_env, token_note = tokens.for_run(run["owner"], run["id"], timeout + 300)
        if token_note:
            self.notes.append(token_note)
        env = {"PATH": os.pathsep.join([os.path.dirname(account.python), "/usr/local/bin", "/usr/bin", "/bin"]),
               "HOME": str(account.home), "USER": account.user, "LOGNAME": account.user, "SHELL": "/bin/bash",
               "LANG": LANG, "LC_ALL": LANG, "ALERTLAB_RUN_ID": str(run["id"]),
               "ALERTLAB_SCHEDULE_ID": str(run["schedule_id"]), **token_env}
        user_opts = {}
        if account.uid is not None:
            user_opts = dict(user=account.uid, group=account.gid, extra_groups=list(account.groups))
        started = time.monotonic()
        # the launcher's output goes to an anonymous file of ours, not into the folder the owner can
        # write (where it could be swapped for a link to a file only root may read)
        with tempfile.TemporaryFile() as logf:
            proc = subprocess.Popen([account.python, "-m", "alertlab.scheduler.launch", str(folder / "spec.json")],
                                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                    cwd=str(account.home), env=env, start_new_session=True, close_fds=True,
                                    **user_opts)
            ledger.set_pid(run["id"], self.worker, proc.pid)
            verdict = self._watch(proc, started, timeout)
            logf.seek(max(0, logf.seek(0, os.SEEK_END) - 200_000))
            log_tail = logf.read().decode("utf-8", "replace")
        if verdict in ("requeue", "gone"):
            return Outcome(verdict)
        ipynb = self._read_output(output, account)
        html = self._html(ipynb)
        if verdict == "timed-out":
            return Outcome("timed-out", f"timed out after {timeout:g}s: the notebook was interrupted and its "
                           "kernel killed",
                           self._note(), ipynb, html)
        if verdict == "cancelled":
            return Outcome("cancelled", "cancelled while running: the notebook and its kernel were killed",
                           self._note(), ipynb, html)
        code = proc.returncode
        if code == 0:
            return Outcome("succeeded", None, self._note(), ipynb, html)
        return Outcome("failed", self._error(code, log_tail, memory), self._note(), ipynb, html)

    def _watch(self, proc: subprocess.Popen, started: float, timeout: float) -> str:
        run = self.run_row
        next_beat = time.monotonic() + ledger.HEARTBEAT_SECONDS
        while True:
            try:
                proc.wait(timeout=0.2)
                return "exited"
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - started > timeout:
                interrupt_kernel(proc.pid)  # papermill then saves the notebook with the interrupted cell
                try:
                    proc.wait(timeout=INTERRUPT_GRACE)
                except subprocess.TimeoutExpired:
                    pass
                kill_tree(proc.pid)
                proc.wait()
                return "timed-out"
            if self.stopping():
                kill_tree(proc.pid)
                proc.wait()
                return "requeue"
            if now >= next_beat:
                next_beat = now + ledger.HEARTBEAT_SECONDS
                try:
                    state = ledger.heartbeat(run["id"], self.worker, run["attempt"])
                except Exception as exc:  # the database hiccuped: keep running, try again next beat
                    log.warning("heartbeat of run %s failed: %s", run["id"], exc)
                    continue
                if state != "ok":
                    kill_tree(proc.pid)
                    proc.wait()
                    return "cancelled" if state == "cancel" else "gone"

    def _error(self, code: int, text: str, memory: int) -> str:
        marked = [line[len(MARK):].strip() for line in text.splitlines() if line.startswith(MARK)]
        message = marked[-1] if marked else ""
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return f"the run was killed by {name} (memory limit {memory} MB)"
        if not message:
            tail = " | ".join(text.strip().splitlines()[-3:])
            message = f"exit status {code}: {tail}"[:2000]
        if message.startswith("MemoryError"):
            message += f" (the run's memory limit is {memory} MB)"
        elif "DeadKernelError" in message or "Kernel died" in message:
            message += f" (the kernel died: it may have reached the run's memory limit of {memory} MB)"
        return message

    def _read_output(self, output: Path, account: accounts.RunAccount) -> bytes | None:
        """The executed notebook, read without following links, only if the owner wrote it."""
        try:
            fd = os.open(output, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            self.notes.append("no output notebook was written")
            return None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or (account.uid is not None and st.st_uid != account.uid):
                self.notes.append("the output notebook was not a regular file of the owner: not kept")
                return None
            data = fh.read(MAX_NOTEBOOK_BYTES + 1)
        if len(data) > MAX_NOTEBOOK_BYTES:
            self.notes.append("the output notebook is larger than 256 MB: not kept")
            return None
        return data

    def _html(self, ipynb: bytes | None) -> bytes | None:
        if ipynb is None:
            return None
        try:
            return to_html(ipynb)
        except Exception as exc:
            self.notes.append(f"no HTML: nbconvert failed ({type(exc).__name__}: {exc})")
            return None


def warm_up() -> None:
    """Import nbconvert and load its templates once (about 3 s), so the first run does not pay for it."""
    import nbformat

    to_html(nbformat.writes(nbformat.v4.new_notebook()).encode())


def to_html(ipynb: bytes) -> bytes:
    """The notebook rendered by nbconvert (the 'lab' template)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.reads(ipynb.decode("utf-8"), as_version=4))
    return body.encode("utf-8")
