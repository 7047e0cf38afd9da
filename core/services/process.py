"""Start, find and stop a background server process, with its pid file,
its log and the ports it was given.

Each service has a state file $ALERTLAB_HOME/<name>/state.json holding the pid
and the ports chosen the first time, so a restart reuses the same ports and the
export lines printed by `alertlab services up` stay valid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from alertlab.core import settings
from alertlab.core.errors import MissingPrerequisite, ServiceError


def require(program: str, install_hint: str) -> str:
    """The full path of ``program``, or a MissingPrerequisite saying what to install."""
    found = shutil.which(program)
    if not found:
        raise MissingPrerequisite(program, install_hint)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ServiceState:
    """Pid and ports of one service, persisted in its folder."""

    def __init__(self, name: str):
        self.name = name
        self.dir = settings.home() / name
        self.file = self.dir / "state.json"

    def load(self) -> dict:
        if self.file.exists():
            return json.loads(self.file.read_text())
        return {}

    def save(self, **values) -> dict:
        data = self.load()
        data.update(values)
        private_dir(self.dir)
        # atomically: the CLI reads this file while the service it started writes it (a reader of a
        # half-written file saw invalid JSON)
        tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.file)
        return data

    def port(self, key: str) -> int:
        """A port remembered under ``key``, chosen free the first time (or when taken by someone else)."""
        data = self.load()
        port = data.get(key)
        if not port or (port_open(port) and not self.running()):
            port = free_port()
            self.save(**{key: port})
        return port

    def pid(self) -> int | None:
        return self.load().get("pid")

    def running(self) -> bool:
        pid = self.pid()
        return bool(pid) and pid_alive(pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def private_dir(path: Path) -> Path:
    """Create ``path`` readable by this account only: service data, logs and passwords live there, and
    other local accounts (users' notebooks) must not read them."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def log_path(name: str) -> Path:
    logs = private_dir(settings.home() / "logs")
    return logs / f"{name}.log"


def start(state: ServiceState, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` detached (its own session, so it outlives the CLI), logging to logs/<name>.log."""
    log = log_path(state.name)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, cwd=cwd,
        )
    state.save(pid=proc.pid, argv=argv)
    return proc.pid


def wait_until(check, state: ServiceState, what: str) -> None:
    """Poll ``check()`` until it is true; fail with the log's path if the process dies or time runs out."""
    deadline = time.monotonic() + settings.get("ALERTLAB_SERVICE_TIMEOUT")
    log = log_path(state.name)
    while time.monotonic() < deadline:
        if check():
            return
        if not state.running():
            raise ServiceError(state.name, f"exited before {what}", str(log))
        time.sleep(0.25)
    raise ServiceError(state.name, f"did not {what} within {settings.get('ALERTLAB_SERVICE_TIMEOUT'):.0f}s", str(log))


def stop(state: ServiceState, timeout: float = 30.0) -> bool:
    """Stop the service's whole process group: SIGTERM, then SIGKILL. True if something was running."""
    pid = state.pid()
    if not pid or not pid_alive(pid):
        state.save(pid=None)
        return False
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        pgid = None
    _signal(pid, pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        _reap(pid)
        time.sleep(0.1)
    if pid_alive(pid):
        _signal(pid, pgid, signal.SIGKILL)
        time.sleep(0.2)
        _reap(pid)
    state.save(pid=None)
    return True


def _signal(pid: int, pgid: int | None, sig: int) -> None:
    try:
        if pgid and pgid == pid:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
