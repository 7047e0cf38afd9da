"""The published notebook, copied where the Voilà server reads it.

A dashboard is one version of a gallery entry: ``<slug>-v<version>.ipynb`` in
the dashboards folder (``paths.root_dir``), written once (atomically) by the
`alertlab` service the first time someone opens it. The copy runs in the
AlertLab kernel whatever the author used, and has no stored outputs (Voilà
computes them for each viewer). Viewers never reach the author's files or
server: only this copy."""

from __future__ import annotations

import os

from alertlab.dashboards import paths


def name(slug: str, version: int) -> str:
    return f"{slug}-v{int(version)}.ipynb"


def prepare(raw: bytes) -> bytes:
    import nbformat

    nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    nb.metadata["kernelspec"] = {"name": "alertlab", "display_name": "AlertLab (Python 3)", "language": "python"}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nbformat.writes(nb).encode("utf-8")


def ensure(slug: str, version: int, load) -> str:
    """The file name of that dashboard in the folder, written from ``load()`` (the .ipynb bytes) if missing."""
    root = paths.root_dir()
    filename = name(slug, version)
    target = root / filename
    if not target.exists():
        tmp = root / f".{filename}.{os.getpid()}.tmp"
        tmp.write_bytes(prepare(load()))
        tmp.chmod(0o644)
        os.replace(tmp, target)
    return filename


def remove(slug: str) -> None:
    """Delete every version of a dashboard (its entry was deleted)."""
    root = paths.root_dir()
    for path in root.glob(f"{slug}-v*.ipynb"):
        path.unlink(missing_ok=True)
