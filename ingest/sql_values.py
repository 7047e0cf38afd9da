"""Multi-row INSERTs whose values are written as SQL literals here rather than by the driver.

pymysql escapes every value through a generic per-value dispatch (a few
microseconds each). An alert's object row alone has 86 columns, and that
escaping was about a sixth of the ingest's CPU. The ingest's rows hold only
None, numbers and text, so the literals are written with a dispatch on the
exact type: numbers with ``repr`` (exact for floats, with pymysql's ``e0``
suffix so MariaDB reads a DOUBLE), text with the connection's own ``escape``
(which knows the server's backslash mode). Anything else is
a TypeError, never a silently wrong literal.

Statements are cut at about 1 MB, as pymysql's ``executemany`` cuts them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

MAX_STATEMENT = 1_000_000


def _float(v: float) -> str:
    if not math.isfinite(v):
        return "NULL"  # NaN and infinities mean "unknown" in these rows
    s = repr(v)
    return s if "e" in s else s + "e0"


def literal_writer(quote):
    """A function turning one value into its SQL literal, with ``quote`` (str -> quoted literal) for text."""

    def literal(v) -> str:
        t = type(v)
        if v is None:
            return "NULL"
        if t is float:
            return _float(v)
        if t is int:
            return str(v)
        if t is str:
            return quote(v)
        if t is bool:
            return "1" if v else "0"
        if isinstance(v, np.floating):
            return _float(float(v))
        if isinstance(v, np.integer):
            return str(int(v))
        raise TypeError(f"no SQL literal for {t.__name__} values here")

    return literal


def statements(head: str, rows: Iterable[Sequence], literal, tail: str = "") -> list[str]:
    """``head`` ("INSERT ... VALUES") + rows as literal tuples + ``tail``, in statements of about 1 MB."""
    out, parts, size = [], [], 0
    for row in rows:
        text = "(" + ",".join([literal(v) for v in row]) + ")"
        if parts and size + len(text) > MAX_STATEMENT:
            out.append(f"{head} {','.join(parts)} {tail}")
            parts, size = [], 0
        parts.append(text)
        size += len(text) + 1
    if parts:
        out.append(f"{head} {','.join(parts)} {tail}")
    return out


def insert(conn, head: str, rows: Iterable[Sequence], tail: str = "") -> None:
    """Run the INSERT on the SQLAlchemy connection ``conn`` (inside its transaction)."""
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor()
    try:
        for sql in statements(head, rows, literal_writer(dbapi.escape), tail):
            cursor.execute(sql)  # no arguments: pymysql sends the text as it is
    finally:
        cursor.close()
