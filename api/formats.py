"""Rows as JSON or CSV: the cell conversion every route shares, and writers
that turn a row iterator into a streamed body, a chunk of rows at a time, so
a million-row result never sits in memory as one document."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import math
from typing import Callable, Iterable, Iterator

CHUNK_ROWS = 2000
CSV_TYPE = "text/csv; charset=utf-8"


def cell(value):
    """A database value as JSON: NaN/inf as null, decimals as floats, times as ISO 8601, blobs as base64."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value


def record(columns: list[str], row) -> dict:
    return {c: cell(v) for c, v in zip(columns, row)}


def choose(format_: str | None, accept: str | None, allowed=("json", "csv")) -> str:
    """The answer's format: the ``format`` parameter if given, else CSV when the Accept header
    prefers text/csv to JSON, else JSON."""
    if format_:
        return format_
    accept = (accept or "").lower()
    if "text/csv" in accept and "csv" in allowed:
        json_at = accept.find("application/json")
        if json_at < 0 or accept.find("text/csv") < json_at:
            return "csv"
    return "json"


def _csv_value(value):
    value = cell(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def csv_chunks(columns: list[str], rows: Iterable, header: bool = True) -> Iterator[bytes]:
    """CSV (RFC 4180, a header line first) in chunks of CHUNK_ROWS rows; NULL is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(columns)
    n = 0
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
        n += 1
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def json_result_chunks(columns: list[str], rows: Iterator, limit: int,
                       error_of: Callable[[BaseException], str | None] = lambda exc: None,
                       truncated: bool = False) -> Iterator[bytes]:
    """``{"columns": [...], "rows": [[...], ...], "truncated": bool}`` streamed from an iterator of
    up to ``limit + 1`` rows (the extra row only says the result is truncated; ``truncated=True``
    says it when the rows are already cut). An error that ``error_of`` recognises after rows were
    sent ends the document with ``"error": "..."``."""
    yield (json.dumps({"columns": columns})[:-1] + ', "rows": [').encode()
    n, error, parts = 0, None, []
    try:
        for row in rows:
            if n == limit:
                truncated = True
                break
            parts.append(json.dumps([cell(v) for v in row], default=str))
            n += 1
            if len(parts) == CHUNK_ROWS:
                yield (("," if n > CHUNK_ROWS else "") + ",".join(parts)).encode()
                parts = []
    except Exception as exc:  # noqa: BLE001 - reported in the document, or re-raised
        error = error_of(exc)
        if error is None:
            raise
        truncated = True
    finally:
        close = getattr(rows, "close", None)
        if close:
            close()
    tail = ("," if parts and n > len(parts) else "") + ",".join(parts)
    end = {"truncated": truncated} if error is None else {"truncated": truncated, "error": error}
    yield (tail + "], " + json.dumps(end)[1:]).encode()
