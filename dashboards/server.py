"""`python -m alertlab.dashboards`: the dashboards' Voilà server, as a hub service.

The hub starts this (as root when it runs as root) like its other managed
services (``service()`` is its entry in the hub's configuration). It prepares
what Voilà needs and then *becomes* the unprivileged service account and
execs Voilà (``voila_app``), so nothing of root, of the hub's environment
(database URLs, the service's hub token) or of $ALERTLAB_HOME reaches Voilà or
its kernels:

- the account ($ALERTLAB_VOILA_USER) and the folder of dashboard notebooks;
- kernelspecs "alertlab" and "python3" that start ``alertlab.dashboards.kernel``
  (the viewer's token, non-dumpable) with the Python users' servers run, in
  Jupyter and IPython folders that the account cannot write (no kernel can
  plant code that a later viewer's kernel, or Voila, would run);
- the secret token, handed over through a pipe rather than argv, the
  environment or a file;
- a clean environment: PATH, HOME, LANG, ALERTLAB_URL (where kernels find the
  API), and the hub's address and service name (which tell `alertlab hub`
  whose process this is, never a token)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from alertlab.core import settings
from alertlab.dashboards import paths

KERNEL_NAMES = ("alertlab", "python3")


def service() -> dict:
    """The hub's service entry for the dashboards' Voilà server (used by alertlab.hub.config)."""
    env = {k: os.environ[k] for k in ("ALERTLAB_HOME", "ALERTLAB_VOILA_USER", "ALERTLAB_DASHBOARD_IDLE_SECONDS",
                                       "ALERTLAB_DASHBOARD_WARM_KERNELS", "LANG", "LC_ALL") if os.environ.get(k)}
    env["ALERTLAB_HOME"] = str(settings.home())
    paths.token()  # made now, in the hub, before the alertlab service and this one both read it
    return {"name": paths.SERVICE, "command": [sys.executable, "-m", "alertlab.dashboards"], "environment": env,
            "display": False}


def user_python() -> str:
    from alertlab.hub import control, runtime

    return control.state().load().get("user_python") or runtime.user_python()


def write_jupyter_dir(jupyter_dir: Path, python: str) -> None:
    """Jupyter's and IPython's folders for Voila and its kernels, owned by root and read-only for the
    account, so that no kernel can leave behind code that a later viewer's kernel (or Voila itself) would
    run: kernelspecs, configuration, data (labextensions), IPython profile (startup files)."""
    jupyter_dir.mkdir(mode=0o755, exist_ok=True)
    for name in KERNEL_NAMES:
        folder = jupyter_dir / "kernels" / name
        folder.mkdir(parents=True, exist_ok=True)
        spec = {"argv": [python, "-m", "alertlab.dashboards.kernel", "-f", "{connection_file}"],
                "display_name": "AlertLab (Python 3)", "language": "python",
                "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}}
        (folder / "kernel.json").write_text(json.dumps(spec, indent=1))
    for sub in ("config", "data", "ipython"):
        (jupyter_dir / sub).mkdir(exist_ok=True)
    (jupyter_dir / "config" / "migrated").touch()  # jupyter_core would otherwise try to write it
    for d in [jupyter_dir, jupyter_dir / "kernels", jupyter_dir / "config", jupyter_dir / "data",
              jupyter_dir / "ipython", *[jupyter_dir / "kernels" / n for n in KERNEL_NAMES]]:
        d.chmod(0o755)


def environment(home: str, user: str, python: str, jupyter_dir: Path) -> dict:
    from alertlab.hub import control

    env = {
        "PATH": os.pathsep.join([os.path.dirname(python), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home, "USER": user, "SHELL": "/bin/sh",
        "JUPYTER_PATH": str(jupyter_dir), "JUPYTER_CONFIG_DIR": str(jupyter_dir / "config"),
        "JUPYTER_DATA_DIR": str(jupyter_dir / "data"), "JUPYTER_RUNTIME_DIR": os.path.join(home, ".runtime"),
        "IPYTHONDIR": str(jupyter_dir / "ipython"),  # read-only: IPython then uses a fresh temporary one
        "PYTHONNOUSERSITE": "1",  # no .pth files from the account's own site-packages
        "PYTHONDONTWRITEBYTECODE": "1",
        "ALERTLAB_URL": control.service_url(),
    }
    for key in ("LANG", "LC_ALL", "JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_NAME"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


def stop_previous(timeout: float = 10.0) -> None:
    """Stop a Voila server of this installation left running (a hub that died restarts its services as it
    goes, and such a leftover would keep the port)."""
    import psutil

    pid = paths.state().pid()
    if not pid or pid == os.getpid():
        return
    try:
        proc = psutil.Process(pid)
        if "alertlab.dashboards.voila_app" not in " ".join(proc.cmdline()):
            return
        proc.terminate()
        proc.wait(timeout)
    except psutil.TimeoutExpired:
        proc.kill()
    except psutil.Error:
        pass


def main() -> None:
    from alertlab.hub import control

    stop_previous()
    root = paths.root_dir()
    python = user_python()
    secret = paths.token()
    port = paths.port()
    if paths.isolated():
        pw = paths.ensure_account()
        home, user, uid, gid = pw.pw_dir, pw.pw_name, pw.pw_uid, pw.pw_gid
        jupyter_dir = Path(home) / f"jupyter-{paths.installation_id()}"
    else:
        import getpass

        home, user, uid, gid = os.path.expanduser("~"), getpass.getuser(), None, None
        jupyter_dir = settings.home() / "dashboards-jupyter"
        print("dashboards: the hub is not running as root, so dashboards run as this account, not a separate "
              "service account", file=sys.stderr)
    write_jupyter_dir(jupyter_dir, python)
    env = environment(home, user, python, jupyter_dir)
    read_end, write_end = os.pipe()
    os.write(write_end, secret.encode())
    os.close(write_end)
    os.set_inheritable(read_end, True)
    argv = [python, "-m", "alertlab.dashboards.voila_app", "--port", str(port),
            "--base-url", f"/services/{control.SERVICE}/{paths.BASE}", "--root", str(root), "--token-fd", str(read_end),
            "--idle", str(settings.get("ALERTLAB_DASHBOARD_IDLE_SECONDS")),
            "--warm", str(settings.get("ALERTLAB_DASHBOARD_WARM_KERNELS"))]
    paths.state().save(voila_port=port, pid=os.getpid())
    if uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    os.chdir(root)
    os.execve(python, argv, env)


if __name__ == "__main__":
    main()
