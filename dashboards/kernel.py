"""The kernel of a dashboard: ipykernel, started so that it holds its viewer's
token and nothing else, and so that other dashboard kernels (same service
account) cannot read it.

The Voilà server passes the viewer's short-lived hub token in the request
headers it maps to the kernel's environment (``HTTP_X_ALERTLAB_TOKEN``, see
``voila_app``); here it becomes ``ALERTLAB_TOKEN``, the variable
``alertlab.client`` reads, and the header variables are removed. The process
first makes itself non-dumpable (prctl PR_SET_DUMPABLE 0): /proc/<pid>/environ
and its memory are then closed to processes of the same account. Heavy
modules are imported before the kernel starts so that a kernel from the warm
pool (``voila_app.DashboardKernelManager``) answers at once."""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_DUMPABLE = 4
TOKEN_HEADER = "HTTP_X_ALERTLAB_TOKEN"
PRELOAD = ("numpy", "pandas", "ipywidgets", "matplotlib", "matplotlib.pyplot", "alertlab.client")


def non_dumpable() -> bool:
    """Close /proc/self/{environ,mem,...} to other processes of this account; False if it cannot."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def take_viewer_environment(env=os.environ) -> None:
    """ALERTLAB_TOKEN from the viewer's header variable; every HTTP_* header variable dropped."""
    token = env.pop(TOKEN_HEADER, None)
    if token:
        env["ALERTLAB_TOKEN"] = token
    for key in [k for k in env if k.startswith("HTTP_")]:
        del env[key]


def preload() -> None:
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs time later
            pass


def main() -> None:
    non_dumpable()
    take_viewer_environment()
    preload()
    from ipykernel.kernelapp import launch_new_instance

    sys.argv[0] = "ipykernel_launcher"
    launch_new_instance()


if __name__ == "__main__":
    main()
