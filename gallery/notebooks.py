"""What the gallery derives from a notebook file: a validated notebook, its
default title, its HTML render (nbconvert's lab template, computed once per
version and cached by ``store``), its thumbnail (the first image output,
scaled down to a PNG) and safe names for it on disk and in URLs.

Pure functions over bytes: no database, no web."""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import re
import unicodedata
import warnings

from typing import TYPE_CHECKING

from alertlab.core.errors import AlertLabError

if TYPE_CHECKING:  # nbformat (jsonschema) takes seconds to import: only when a notebook is read
    import nbformat

THUMB_SIZE = (480, 320)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_TITLE = 255
_SLUG_DROP = re.compile(r"[^a-z0-9]+")
_FILE_DROP = re.compile(r"[^\w .()+,=@-]+", re.UNICODE)


class InvalidNotebook(AlertLabError):
    """The file is not a notebook the gallery can take."""


def parse(data: bytes) -> nbformat.NotebookNode:
    """The notebook in ``data`` (JSON, nbformat 4), normalized and validated; InvalidNotebook otherwise."""
    import nbformat
    from nbformat.v4 import rwbase
    from nbformat.warnings import MissingIDFieldWarning

    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidNotebook("the notebook is not UTF-8 text") from None
    except ValueError as exc:
        raise InvalidNotebook(f"not a Jupyter notebook (not JSON: {exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", []), list) or raw.get("nbformat") != 4:
        raise InvalidNotebook("not a Jupyter notebook in format 4 (the JSON has no nbformat 4 and cells)")
    try:
        with warnings.catch_warnings():  # normalize() warns about the very ids it adds
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            _, normalized = nbformat.validator.normalize(raw)  # cell ids added, as nbformat 5.1.4+ wants
        nb = rwbase.strip_transient(rwbase.rejoin_lines(nbformat.from_dict(normalized)))  # sources as text
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise InvalidNotebook(f"the notebook is not valid nbformat 4: {exc.message[:200]}") from None
    except Exception as exc:  # noqa: BLE001 - malformed structures raise various errors in nbformat
        raise InvalidNotebook(f"not a Jupyter notebook: {str(exc).splitlines()[0][:200]}") from None
    return nb


def dumps(nb: nbformat.NotebookNode) -> bytes:
    import nbformat

    return nbformat.writes(nb).encode("utf-8")


def default_title(nb: nbformat.NotebookNode, path: str | None) -> str:
    """The first Markdown heading, else the file name without .ipynb, else "Untitled"."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                m = re.match(r"\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", line)
                if m:
                    return clean_text(m.group(1), MAX_TITLE)
    if path:
        name = re.split(r"[\\/]", path)[-1]
        name = name[:-6] if name.lower().endswith(".ipynb") else name
        if clean_text(name, MAX_TITLE):
            return clean_text(name, MAX_TITLE)
    return "Untitled"


def clean_text(text: str, limit: int) -> str:
    """One line of text: control characters dropped, spaces collapsed, at most ``limit`` characters.
    Everything else (quotes, <, &, ../, any script) is kept as typed: pages escape it."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(text.split())[:limit]


def slugify(title: str, limit: int = 60) -> str:
    """ASCII letters, digits and hyphens from the title (accents folded), or "notebook"."""
    ascii_ = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return _SLUG_DROP.sub("-", ascii_).strip("-")[:limit].strip("-") or "notebook"


def file_name(title: str, limit: int = 100) -> str:
    """A file name for a copy of the notebook: the title's letters (any script), digits and a few
    punctuation marks; never a path (no slash, no leading dot), always ending in .ipynb."""
    name = _FILE_DROP.sub("-", unicodedata.normalize("NFC", title)).strip(" .-")
    name = re.sub(r"-{2,}", "-", name)[:limit].strip(" .-")
    return (name or "notebook") + ".ipynb"


def attachment_header(title: str) -> str:
    """The Content-Disposition of a notebook download: its file name, percent-encoded (RFC 6266/5987),
    since an HTTP header cannot carry the title's letters of any script as they are."""
    from urllib.parse import quote

    return f"attachment; filename*=UTF-8''{quote(file_name(title), safe='')}"


def render_html(nb: nbformat.NotebookNode) -> bytes:
    """The notebook as a standalone HTML page (nbconvert, lab template)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body.encode("utf-8")


def first_image(nb: nbformat.NotebookNode) -> bytes | None:
    """The bytes of the first image output (PNG, JPEG, GIF, WebP) in the notebook, if any."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            for mime in IMAGE_TYPES:
                if mime in data:
                    raw = data[mime]
                    raw = "".join(raw) if isinstance(raw, list) else raw
                    try:
                        return base64.b64decode(raw, validate=False)
                    except (binascii.Error, ValueError):
                        continue
    return None


def thumbnail(nb: nbformat.NotebookNode) -> bytes | None:
    """The first image output scaled to fit THUMB_SIZE, as PNG; None when there is no readable image."""
    raw = first_image(nb)
    if raw is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.thumbnail(THUMB_SIZE)
            if img.mode not in ("RGB", "RGBA"):
                img = img.convert("RGBA")
            out = io.BytesIO()
            img.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6)


def gunzip(data: bytes) -> bytes:
    return gzip.decompress(data)
