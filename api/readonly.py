"""Running a user's checked SELECT: the read-only account, a time limit and a
row limit, the outer layers behind ``alertlab.api.sqlguard``.

- The account: ``db.engine("alerts", reader=True)``, SELECT on the alert
  database only, so even a query the guard wrongly let through cannot write.
- The time limit: MariaDB's ``SET STATEMENT max_statement_time=N FOR ...``,
  enforced by the server, per statement, on the server's clock; it never
  changes the pooled connection's session.
- The row limit: ``limit + 1`` rows are asked for, so that a truncated result
  is known to be truncated (as Datasette does). The limit and offset are put
  on the query itself rather than around it (``SELECT * FROM (<sql>) q LIMIT``):
  MariaDB may ignore an ORDER BY inside a derived table, and a derived table
  refuses duplicate column names (``SELECT a.objectId, b.objectId ...``). A
  query's own LIMIT/OFFSET is combined with the requested window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from alertlab.api.sqlguard import RejectedQuery, DIALECT
from alertlab.core import db
from alertlab.core.errors import AlertLabError, ServiceError

TIMEOUT_ERRORS = {1969}  # ER_STATEMENT_TIMEOUT: max_statement_time exceeded
# errors of the server or the connection, not of the query: too many connections, shutdown,
# lock wait/deadlock, connection killed (client-side errors 2000-2999 too, see unavailable())
UNAVAILABLE_ERRORS = {1040, 1053, 1203, 1205, 1213, 1927}


def unavailable(code: int | None) -> bool:
    """Whether a MariaDB/pymysql error code says the server or the connection
    failed, rather than the statement: no code, a client-side code (2000-2999)
    or one of UNAVAILABLE_ERRORS. Server errors are 1000-1999 and 3000+."""
    return code is None or code < 1000 or 2000 <= code < 3000 or code in UNAVAILABLE_ERRORS


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool  # more rows exist after these
    elapsed: float   # seconds, from sending the query to having the rows


class QueryTimeout(AlertLabError):
    """The server stopped the query at its time limit."""

    def __init__(self, max_seconds: float):
        self.max_seconds = max_seconds
        super().__init__(f"the query ran longer than {max_seconds:g} s and was stopped")


def run_select(sql: str, *, limit: int, offset: int = 0, max_seconds: float, engine=None) -> QueryResult:
    """Run ``sql`` (which has passed ``check_select``) and return at most ``limit``
    rows from ``offset``. Raises QueryTimeout, RejectedQuery (the server refused
    it: unknown column, ...) or ServiceError (the server is unavailable)."""
    text = limited_statement(sql, limit=limit + 1, offset=offset, max_seconds=max_seconds)
    eng = engine if engine is not None else db.engine("alerts", reader=True)
    started = time.monotonic()
    try:
        with eng.connect() as conn:
            result = conn.execution_options(no_parameters=True).exec_driver_sql(text)
            columns = list(result.keys())
            rows = [tuple(r) for r in result.fetchall()]
    except sa.exc.DBAPIError as exc:
        raise _mapped(exc, max_seconds) from None
    elapsed = time.monotonic() - started
    return QueryResult(columns=columns, rows=rows[:limit], truncated=len(rows) > limit, elapsed=elapsed)


def stream_select(sql: str, *, limit: int, offset: int = 0, max_seconds: float,
                  engine=None) -> tuple[list[str], Iterator[tuple]]:
    """Like ``run_select`` but rows come from a server-side cursor, one at a
    time, for large CSV/JSON downloads; at most ``limit`` rows (no truncation
    flag). The time limit covers the whole statement, including the time the
    caller takes to consume the rows. The connection is released when the
    iterator is exhausted, fails or is closed (``rows.close()``)."""
    text = limited_statement(sql, limit=limit, offset=offset, max_seconds=max_seconds)
    eng = engine if engine is not None else db.engine("alerts", reader=True)
    conn = eng.connect()
    try:
        result = conn.execution_options(no_parameters=True, stream_results=True).exec_driver_sql(text)
        columns = list(result.keys())
    except sa.exc.DBAPIError as exc:
        conn.close()
        raise _mapped(exc, max_seconds) from None
    except BaseException:
        conn.close()
        raise

    def rows() -> Iterator[tuple]:
        try:
            for row in result:
                yield tuple(row)
        except sa.exc.DBAPIError as exc:
            raise _mapped(exc, max_seconds) from None
        finally:
            try:
                result.close()
            finally:
                conn.close()

    return columns, rows()


def limited_statement(sql: str, *, limit: int, offset: int, max_seconds: float) -> str:
    """``SET STATEMENT max_statement_time=N FOR <sql with LIMIT limit OFFSET offset>``."""
    if not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative integer, not {limit!r}")
    if not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, not {offset!r}")
    seconds = float(max_seconds)
    if not seconds > 0:
        raise ValueError(f"max_seconds must be positive, not {max_seconds!r}")
    return f"SET STATEMENT max_statement_time={seconds:.3f} FOR {_windowed(sql, limit, offset)}"


def _windowed(sql: str, limit: int, offset: int) -> str:
    tree = sqlglot.parse_one(sql, dialect=DIALECT)
    own_limit, own_offset = _literal_window(tree)
    if own_limit is False:  # a LIMIT we cannot read: apply ours around it
        return f"SELECT * FROM ({sql}) AS q LIMIT {limit} OFFSET {offset}"
    new_offset = own_offset + offset
    new_limit = limit if own_limit is None else max(0, min(limit, own_limit - offset))
    tree.set("limit", exp.Limit(expression=exp.Literal.number(new_limit)))
    tree.set("offset", exp.Offset(expression=exp.Literal.number(new_offset)))
    return tree.sql(dialect=DIALECT, comments=False)


def _literal_window(tree: exp.Expression) -> tuple[int | None | bool, int]:
    """The query's own (limit, offset) as integers; limit None when absent, False when not a literal."""

    def number(node):
        value = node.expression if isinstance(node, (exp.Limit, exp.Offset)) else node
        if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
            return int(value.this)
        return False

    limit_node, offset_node = tree.args.get("limit"), tree.args.get("offset")
    if limit_node is not None and limit_node.args.get("offset") is not None:
        if offset_node is not None:
            return False, 0
        offset_node = limit_node.args["offset"]
    limit = None if limit_node is None else number(limit_node)
    offset = 0 if offset_node is None else number(offset_node)
    if limit is False or offset is False:
        return False, 0
    return limit, offset


def _mapped(exc: sa.exc.DBAPIError, max_seconds: float) -> AlertLabError:
    orig = exc.orig
    code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
    message = str(orig.args[1]) if orig is not None and len(orig.args) > 1 else str(orig or exc)
    message = " ".join(message.split())
    if code in TIMEOUT_ERRORS:
        return QueryTimeout(max_seconds)
    if unavailable(code):
        return ServiceError("mariadb", f"the query could not be run: {message}")
    return RejectedQuery(f"the database refused the query: {message}")
