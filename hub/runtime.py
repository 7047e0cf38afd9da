"""The Python that users' servers and kernels run, reachable by every account.

Users' servers run as their own unix accounts, so the interpreter, the venv's
packages and the AlertLab checkout must be readable by accounts other than the
one that installed them. A venv made from a system Python qualifies as is. A
venv made from an interpreter inside a private directory (pyenv under /root,
mode 0700) does not: nobody else may execute that interpreter. Rather than
opening /root, we then build a small venv next to the real one ("the runtime"):
the system's python3 of the same minor version, with the real venv's
site-packages, share/ and etc/ linked in, so users get exactly the same packages,
kernelspecs and Jupyter configuration.

Only the venv and the checkout are ever made traversable (o+rx on those
directories themselves, never recursively, never $ALERTLAB_HOME)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import sysconfig
from pathlib import Path

from alertlab.core.errors import ConfigError

RUNTIME_DIR = "alertlab-runtime"


def blocking_dir(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other accounts cannot traverse, if any."""
    path = Path(os.path.realpath(path))
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    if path.is_dir() and not os.stat(path).st_mode & stat.S_IXOTH:
        return path
    return None


def _others_can_run(path: Path) -> bool:
    real = Path(os.path.realpath(path))
    return blocking_dir(real) is None and bool(os.stat(real).st_mode & stat.S_IXOTH)


def _open_up(target: Path, allowed: list[Path]) -> None:
    """Make ``target`` reachable by other accounts, chmod-ing only directories inside ``allowed``."""
    while (blocked := blocking_dir(target)) is not None:
        if not any(blocked == a or a in blocked.parents for a in allowed):
            raise ConfigError(
                f"users' servers cannot reach {target}: {blocked} is closed to other accounts "
                f"(chmod o+x {blocked}, or install AlertLab's venv and checkout under a readable directory)")
        blocked.chmod(blocked.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)


def _link(path: Path, target: Path | str) -> None:
    if path.is_symlink() and os.readlink(path) == str(target):
        return
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(target)


def _build_runtime(venv: Path) -> Path:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    if not base or not _others_can_run(Path(base)):
        raise ConfigError(
            f"the venv's Python ({os.path.realpath(sys.executable)}) cannot be run by other accounts and no "
            f"system python{version} was found: apt-get install python{version}, or build the venv from it")
    runtime = venv / RUNTIME_DIR
    lib = runtime / "lib" / f"python{version}"
    (runtime / "bin").mkdir(parents=True, exist_ok=True)
    lib.mkdir(parents=True, exist_ok=True)
    _link(runtime / "bin" / "python3", base)
    _link(runtime / "bin" / "python", "python3")
    _link(lib / "site-packages", Path(sysconfig.get_paths()["purelib"]))
    for shared in ("share", "etc"):
        (venv / shared).mkdir(exist_ok=True)
        _link(runtime / shared, venv / shared)
    (runtime / "pyvenv.cfg").write_text(
        f"home = {Path(base).parent}\ninclude-system-site-packages = false\nversion = {version}\n")
    for d in (runtime, runtime / "bin", runtime / "lib", lib):
        d.chmod(0o755)
    return runtime / "bin" / "python3"


def user_python() -> str:
    """The interpreter for users' servers and kernels (built the first time it is needed)."""
    venv = Path(sys.prefix)
    checkout = Path(__file__).resolve().parent.parent
    allowed = [venv, checkout]
    _open_up(venv / "bin", allowed)
    _open_up(Path(sysconfig.get_paths()["purelib"]), allowed)
    _open_up(checkout, allowed)
    python = venv / "bin" / "python"
    if _others_can_run(python):
        return str(python)
    return str(_build_runtime(venv))
