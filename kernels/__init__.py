"""The AlertLab kernelspec, "AlertLab (Python 3)": Python with pandas, astropy,
matplotlib, ipywidgets and ``alertlab.client``, installed into the environment
that users' servers run (so every user sees it) when the hub starts.

Its argv starts with "python", which Jupyter replaces by the interpreter running
the server, so the same spec serves the venv and the hub's user runtime."""

from __future__ import annotations

import sys
from importlib import resources

SPEC_NAME = "alertlab"


def install(prefix: str | None = None) -> str:
    """Install (or refresh) the kernelspec under ``prefix`` (default: this environment); returns its folder."""
    from jupyter_client.kernelspec import KernelSpecManager

    source = resources.files("alertlab.kernels") / SPEC_NAME
    with resources.as_file(source) as folder:
        return KernelSpecManager().install_kernel_spec(str(folder), kernel_name=SPEC_NAME,
                                                        prefix=prefix or sys.prefix)
