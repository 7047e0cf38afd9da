"""Reading a watchlist's cones from CSV, a row at a time, with per-row errors.

The CSV has the columns ``ra``, ``dec`` (degrees), ``radius`` (arcsec,
optional: empty means the watchlist's default radius) and ``name``
(optional), named in a header line in any order (``decl``, ``ra_deg``,
``dec_deg``, ``radius_arcsec`` and ``id`` are understood too; other columns
are ignored), or without a header in that order. Blank lines and lines
starting with ``#`` are skipped.

A bad row (a value that is not a number, a declination outside ±90°, a
radius outside (0, 3600] arcsec, a name longer than 255 characters, too few
fields, broken quoting) is reported with its line number and reason and left
out; the good rows are kept. The caller decides whether the upload is still
stored (the API's ``strict`` parameter). A file with more than ``max_cones``
good rows is refused as a whole."""

from __future__ import annotations

import csv
import math
from array import array
from dataclasses import dataclass, field
from typing import Iterable

from alertlab.core.errors import AlertLabError

MAX_CONES = 1_000_000
MAX_RADIUS_ARCSEC = 3600.0  # ingest.watchlists.MAX_RADIUS_ARCSEC (a test keeps them equal), without its imports
MAX_ERRORS_SHOWN = 1000
MAX_NAME = 255

ALIASES = {
    "ra": "ra", "ra_deg": "ra", "raj2000": "ra", "ra_j2000": "ra",
    "dec": "dec", "decl": "dec", "dec_deg": "dec", "dej2000": "dec", "decj2000": "dec", "dec_j2000": "dec",
    "radius": "radius", "radius_arcsec": "radius",
    "name": "name", "id": "name",
}


def _invalid(message: str) -> AlertLabError:
    from alertlab.ingest.watchlists import InvalidCones

    return InvalidCones(message)


@dataclass
class RowError:
    line: int
    reason: str


@dataclass
class ParsedCones:
    ra: array = field(default_factory=lambda: array("d"))
    dec: array = field(default_factory=lambda: array("d"))
    radius: array = field(default_factory=lambda: array("d"))  # NaN: the watchlist's default
    names: list = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)  # the first MAX_ERRORS_SHOWN
    nerrors: int = 0

    def __len__(self) -> int:
        return len(self.ra)

    def error(self, line: int, reason: str) -> None:
        self.nerrors += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(RowError(line, reason))


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError
    return value


def _columns(first: list[str]) -> dict[str, int] | None:
    """Column positions from a header line, or None when the line is data."""
    try:
        _number(first[0])
        _number(first[1])
        return None  # numbers: no header
    except (ValueError, IndexError):
        pass
    positions: dict[str, int] = {}
    for i, name in enumerate(first):
        key = ALIASES.get(name.strip().lower())
        if key and key not in positions:
            positions[key] = i
    missing = [c for c in ("ra", "dec") if c not in positions]
    if missing:
        raise _invalid(f"the CSV header names no {' and no '.join(missing)} column "
                           f"(found: {', '.join(f.strip() for f in first)[:200]})")
    return positions


def parse_cones(lines: Iterable[str], max_cones: int = MAX_CONES) -> ParsedCones:
    """The good cones of a CSV text (an iterable of lines) and the bad rows' errors."""
    out = ParsedCones()
    reader = csv.reader(lines)
    positions: dict[str, int] | None = None
    header_seen = False
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.error(reader.line_num, f"unreadable CSV: {exc}")
            continue
        if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip().startswith("#"):
            continue
        line = reader.line_num
        if not header_seen:
            header_seen = True
            positions = _columns(row)
            if positions is not None:
                continue
            positions = {"ra": 0, "dec": 1, "radius": 2, "name": 3}
        reason = _add(out, row, positions)
        if reason:
            out.error(line, reason)
        elif len(out) > max_cones:
            raise _invalid(f"too many cones: a watchlist holds at most {max_cones:,}")
    if not header_seen:
        raise _invalid("the CSV holds no cones")
    return out


def _add(out: ParsedCones, row: list[str], positions: dict[str, int]) -> str | None:
    """Append the row's cone to ``out``, or return why it is not a cone."""
    need = max(positions["ra"], positions["dec"]) + 1
    if len(row) < need:
        return f"expected at least {need} fields, found {len(row)}"
    ra_text, dec_text = row[positions["ra"]].strip(), row[positions["dec"]].strip()
    try:
        ra = _number(ra_text)
    except ValueError:
        return f"ra is not a number: {ra_text[:40]!r}"
    try:
        dec = _number(dec_text)
    except ValueError:
        return f"dec is not a number: {dec_text[:40]!r}"
    if not -360.0 <= ra <= 360.0:
        return f"ra must be in degrees, between 0 and 360: {ra_text[:40]}"
    if not -90.0 <= dec <= 90.0:
        return f"dec must be between -90 and 90 degrees: {dec_text[:40]}"
    radius = math.nan
    at = positions.get("radius")
    if at is not None and at < len(row) and row[at].strip():
        text = row[at].strip()
        try:
            radius = _number(text)
        except ValueError:
            return f"radius is not a number: {text[:40]!r}"
        if not 0.0 < radius <= MAX_RADIUS_ARCSEC:
            return f"radius must be more than 0 and at most {MAX_RADIUS_ARCSEC:g} arcsec: {text[:40]}"
    name = None
    at = positions.get("name")
    if at is not None and at < len(row) and row[at].strip():
        name = row[at].strip()
        if len(name) > MAX_NAME:
            return f"name is longer than {MAX_NAME} characters"
    out.ra.append(ra % 360.0)
    out.dec.append(dec)
    out.radius.append(radius)
    out.names.append(name)
    return None
