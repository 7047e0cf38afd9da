"""User filters, evaluated on each ingest batch.

A filter is a WHERE condition over the columns of ``objects`` (``filters.where_sql``).
After each committed batch the ingest calls ``FilterEvaluator.evaluate(rows)``
with the batch's freshly computed ``objects`` rows; each active filter is
evaluated on those objects only, and the matches are returned (and counted
in ``filters.nmatches``).

How, so that a thousand filters cost a batch a few tens of milliseconds:

- One dedicated connection (the writer account; detached from the pool so no
  one else ever sees its session) holds a TEMPORARY TABLE named ``objects``,
  created from the real table's column list. In MariaDB a temporary table
  shadows the base table of the same name within its session, so a filter's
  SQL runs unchanged against the batch's rows only, while ``annotations``,
  ``watchlist_hits``, ``area_hits``, ... are still the real tables.
- Per batch: the temporary table is refilled (one multi-row INSERT) and all
  filters are evaluated in one statement and one table scan:
  ``SELECT objectId, CONCAT_WS(',', IF((<where 1>), 1, NULL), ...) FROM objects``
  returns, per object, the ids of the filters it matches.
- Everything runs in a READ ONLY transaction (MariaDB still allows writing
  temporary tables there) under ``SET STATEMENT max_statement_time``: a
  filter cannot write, and cannot run for long.
- When that statement fails, the culprits are found by splitting the filters
  into groups (about sqrt(n) groups, recursively) and evaluating each group;
  a filter that fails alone is deactivated (``active=0``, ``last_error``,
  ``last_error_at``) and the others' matches are still returned. After a
  timeout the filters are tried one by one (each try of a slow group costs
  the full time limit). Errors of the server or the connection, not of a
  filter, are retried once on a new connection, then raised (ServiceError).
- The list of active filters is re-read at most every ``refresh_seconds``;
  each ``where_sql`` is re-checked by the SQL guard (``check_filter_where``)
  when it is first seen, and a filter the guard rejects is deactivated with
  the guard's reason and never run.

Inside a filter, ``objects`` (also in subqueries) means the batch's objects.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from dataclasses import dataclass

import pymysql
import sqlglot
from sqlglot import exp

from alertlab.api.readonly import TIMEOUT_ERRORS, unavailable
from alertlab.api.sqlguard import DIALECT, RejectedQuery, check_filter_where
from alertlab.core import db
from alertlab.core.errors import ServiceError
from alertlab.ingest import sql_values

log = logging.getLogger(__name__)

# errors that say the statement was stopped from outside (KILL QUERY), not that a filter is wrong
_INTERRUPTED = {1317}
_HEAP_TABLE_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class FilterMatch:
    filter_id: int
    owner: str
    objectId: str


@dataclass(frozen=True)
class _Checked:
    """A where_sql as the guard and the evaluator see it."""
    condition: str                 # normalised by the guard: what runs
    subquery: bool                 # has a subquery: evaluated as WHERE, where MariaDB can semi-join
    columns: frozenset[str] | None  # names it may read (lowercase); None: any column


@dataclass(frozen=True)
class _Filter:
    id: int
    owner: str
    where_sql: str   # as stored: deactivation checks it did not change meanwhile
    checked: _Checked

    @property
    def condition(self) -> str:
        return self.checked.condition


class _FilterFailed(Exception):
    def __init__(self, message: str, timeout: bool):
        super().__init__(message)
        self.message = message
        self.timeout = timeout


class _Unavailable(Exception):
    """The server or the connection failed; no filter is to blame."""


class FilterEvaluator:
    """Evaluates the active user filters on ingest batches. One per ingest
    worker: it holds one connection and is not thread-safe."""

    def __init__(self, engine=None, refresh_seconds: float = 5.0, max_seconds: float = 2.0):
        self._engine = engine
        self.refresh_seconds = refresh_seconds
        self.max_seconds = max_seconds
        self._conn: pymysql.connections.Connection | None = None
        self._columns: list[str] = []
        self._ignored_keys: set[str] = set()
        self._prepared: str | None = None  # the combined statement prepared on the connection (_run_combined)
        self._filters: list[_Filter] = []
        self._loaded_at: float | None = None
        self._checked: dict[str, _Checked | RejectedQuery] = {}

    @property
    def engine(self):
        if self._engine is None:
            self._engine = db.engine("alerts")
        return self._engine

    # -- the public side ---------------------------------------------------------------------------

    def evaluate(self, object_rows: list[dict]) -> list[FilterMatch]:
        """The (filter, object) matches among ``object_rows`` (dicts keyed by
        the columns of ``objects``), sorted by filter id and objectId."""
        self._refresh()
        rows = {r["objectId"]: r for r in object_rows}  # one row per object; the last wins
        if not rows or not self._filters:
            return []
        try:
            pairs, broken = self._evaluate_once(list(rows.values()))
        except _Unavailable as first:
            log.warning("filter evaluation failed (%s); retrying on a new connection", first)
            self._disconnect()
            try:
                pairs, broken = self._evaluate_once(list(rows.values()))
            except _Unavailable as exc:
                self._disconnect()
                raise ServiceError("mariadb", f"user filters could not be evaluated: {exc}") from None
        self._deactivate(broken)
        pairs.sort()
        self._count(pairs)
        owners = {f.id: f.owner for f in self._filters}
        owners.update((f.id, f.owner) for f, _ in broken)
        return [FilterMatch(fid, owners[fid], oid) for fid, oid in pairs]

    def refresh(self) -> None:
        """Read and check the active filters now (the ingest does so at start, not in its first batch)."""
        self._loaded_at = None
        self._refresh()

    def warm(self) -> None:
        """Read and check the active filters, and open the evaluation connection with its batch table, now:
        the ingest does so at start, not in its first batch (where it took ~0.15 s). A server error is left
        for the first batch to meet and report."""
        self.refresh()
        if self._filters:
            try:
                self._connection()
            except _Unavailable:
                pass

    def close(self) -> None:
        self._disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the active filters ------------------------------------------------------------------------

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._loaded_at is not None and now - self._loaded_at < self.refresh_seconds:
            return
        with self.engine.connect() as conn:
            stored = conn.exec_driver_sql(
                "SELECT id, owner, where_sql FROM filters WHERE active = 1 ORDER BY id").fetchall()
            scopes = _owner_scopes(conn, {owner for _, owner, where_sql in stored if _reads_hits(where_sql)})
        checked: dict[tuple, _Checked | RejectedQuery] = {}
        filters, rejected = [], []
        for fid, owner, where_sql in stored:
            extra = scopes.get(owner, NO_HITS)
            key = (where_sql, tuple(sorted(extra.items())))
            if key not in checked:
                checked[key] = self._checked.get(key) or _check(where_sql, extra)
            result = checked[key]
            if isinstance(result, RejectedQuery):
                rejected.append((_Filter(fid, owner, where_sql, None), f"rejected by the SQL guard: {result.reason}"))
            else:
                filters.append(_Filter(fid, owner, where_sql, result))
        self._checked = checked  # only what is still in use
        self._filters = filters
        self._loaded_at = now
        self._deactivate(rejected)

    def _deactivate(self, broken: list[tuple[_Filter, str]]) -> None:
        if not broken:
            return
        with self.engine.begin() as conn:
            for f, message in broken:
                log.warning("deactivating filter %s of %s: %s", f.id, f.owner, message)
                conn.exec_driver_sql(
                    "UPDATE filters SET active = 0, last_error = %s, last_error_at = NOW(6) "
                    "WHERE id = %s AND where_sql = %s", (message[:60000], f.id, f.where_sql))
        gone = {f.id for f, _ in broken}
        self._filters = [f for f in self._filters if f.id not in gone]

    def _needed_columns(self) -> set[str] | None:
        needed: set[str] = {"objectid"}
        for f in self._filters:
            if f.checked.columns is None:
                return None
            needed |= f.checked.columns
        return needed

    def _count(self, pairs: list[tuple[int, str]]) -> None:
        counts = collections.Counter(fid for fid, _ in pairs)
        if not counts:
            return
        cases = " ".join(f"WHEN {int(fid)} THEN {int(n)}" for fid, n in counts.items())
        ids = ",".join(str(int(fid)) for fid in counts)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE filters SET nmatches = nmatches + CASE id {cases} ELSE 0 END "
                                 f"WHERE id IN ({ids})")

    # -- the batch ---------------------------------------------------------------------------------

    def _evaluate_once(self, rows: list[dict]) -> tuple[list[tuple[int, str]], list[tuple[_Filter, str]]]:
        conn = self._connection()
        keys = set().union(*rows)
        try:
            if not keys <= set(self._columns) | self._ignored_keys:
                self._create_batch_table(conn)  # the objects table changed since we copied its columns
                self._ignored_keys = keys - set(self._columns)
            with conn.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
                try:
                    cur.execute("DELETE FROM objects")  # the temporary table
                    self._fill(cur, rows, keys)
                    return self._evaluate_group(cur, self._filters, len(rows))
                finally:
                    cur.execute("ROLLBACK")
        except pymysql.err.MySQLError as exc:
            raise _Unavailable(_message(exc)) from None

    def _fill(self, cur, rows: list[dict], keys: set[str]) -> None:
        """One INSERT of the batch, with only the columns some filter may read (the others stay NULL)."""
        needed = self._needed_columns()
        columns = [c for c in self._columns if c in keys and (needed is None or c.lower() in needed)]
        literal = sql_values.literal_writer(sql_values.quoter(self._conn))
        values = ",".join("(" + ",".join([literal(r.get(c)) for c in columns]) + ")" for r in rows)
        cur.execute(f"INSERT INTO objects ({', '.join(_quote(c) for c in columns)}) VALUES {values}")

    def _evaluate_group(self, cur, filters: list[_Filter], nrows: int):
        """The (filter id, objectId) matches of ``filters``, and the filters that failed alone, with their error."""
        if len(filters) == 1:
            f = filters[0]
            try:
                ids = self._run(cur, f"SELECT objectId FROM objects WHERE ({f.condition})", nrows)
            except _FilterFailed as exc:
                return [], [(f, exc.message)]
            return [(f.id, r[0]) for r in ids], []
        try:
            found = self._run_combined(cur, _combined(filters), nrows)
        except _FilterFailed as exc:
            if exc.timeout:
                groups = [[f] for f in filters]
            else:
                size = math.isqrt(len(filters) - 1)  # about sqrt(n) groups, each smaller than n
                groups = [filters[i:i + size] for i in range(0, len(filters), size)]
            matches, broken = [], []
            for group in groups:
                m, b = self._evaluate_group(cur, group, nrows)
                matches += m
                broken += b
            if exc.timeout and not broken:
                log.warning("%d filters together ran longer than %g s on a batch of %d objects (none alone did); "
                            "they are being evaluated one by one", len(filters), self.max_seconds, nrows)
            return matches, broken
        pairs = [(int(fid), object_id) for object_id, ids in found for fid in ids.split(",")]
        return pairs, []

    def _run_combined(self, cur, select: str, nrows: int) -> list[tuple]:
        """``_run`` for a statement of many filters, prepared once on this connection while it stays the same:
        MariaDB parsed 1,000 filters' conditions again for every batch, 10 of the 28 ms a batch of 70 objects
        took. A statement MariaDB will not prepare runs as text, and fails there as usual."""
        if self._prepared != select:
            self._prepared = None
            try:
                cur.execute("PREPARE alertlab_filters FROM %s", (select,))
            except pymysql.err.MySQLError:
                return self._run(cur, select, nrows)
            self._prepared = select
        return self._run(cur, "EXECUTE alertlab_filters", nrows)

    def _run(self, cur, select: str, nrows: int) -> list[tuple]:
        try:
            cur.execute(f"SET STATEMENT max_statement_time={float(self.max_seconds):.3f} FOR {select}")
            return list(cur.fetchall())
        except pymysql.err.MySQLError as exc:
            code = _code(exc)
            if isinstance(exc, pymysql.err.InterfaceError) or unavailable(code) or code in _INTERRUPTED:
                raise _Unavailable(_message(exc)) from None
            if code in TIMEOUT_ERRORS:
                raise _FilterFailed(f"the filter ran longer than {self.max_seconds:g} s on a batch of {nrows} "
                                    "objects and was stopped", timeout=True) from None
            raise _FilterFailed(f"{_message(exc)} (MariaDB error {code})", timeout=False) from None

    # -- the connection and its temporary table ----------------------------------------------------

    def _connection(self) -> pymysql.connections.Connection:
        if self._conn is None:
            try:
                proxied = self.engine.raw_connection()
                conn = proxied.driver_connection
                proxied.detach()  # this session's `objects` must never reach another user of the pool
                conn.autocommit(True)
                with conn.cursor() as cur:
                    cur.execute(f"SET SESSION max_heap_table_size = {_HEAP_TABLE_BYTES}")
                self._conn = conn
                self._create_batch_table(conn)
            except pymysql.err.MySQLError as exc:
                self._disconnect()
                raise _Unavailable(_message(exc)) from None
        return self._conn

    def _create_batch_table(self, conn) -> None:
        self._prepared = None  # it was prepared against the table dropped here
        with conn.cursor() as cur:
            cur.execute("DROP TEMPORARY TABLE IF EXISTS objects")
            cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, COLUMN_KEY FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'objects' ORDER BY ORDINAL_POSITION")
            described = cur.fetchall()
            if not described:
                raise ServiceError("mariadb", "the alert database has no objects table (run `alertlab db init`)")
            # every column nullable (a batch row may lack one), the primary key kept for lookups by objectId
            defs = [f"{_quote(name)} {ctype}" + (f" COLLATE {collation}" if collation else "")
                    + (" NOT NULL" if key == "PRI" else " NULL")
                    for name, ctype, collation, key in described]
            keys = [_quote(name) for name, _, _, key in described if key == "PRI"]
            if keys:
                defs.append(f"PRIMARY KEY ({', '.join(keys)})")
            body = f"CREATE TEMPORARY TABLE objects ({', '.join(defs)})"
            try:
                cur.execute(body + " ENGINE=MEMORY")
            except pymysql.err.MySQLError:  # e.g. a TEXT/BLOB column: the default engine then
                cur.execute(body)
        self._columns = [name for name, *_ in described]

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self._columns, self._prepared = [], None
        if conn is not None:
            try:
                conn.close()  # temporary tables go with the session
            except Exception:  # noqa: BLE001 - already broken
                pass


def _combined(filters: list[_Filter]) -> str:
    """One statement for all ``filters``: rows of (objectId, comma-separated filter ids).

    Filters without a subquery share one scan of the batch, each an IF() in
    one CONCAT_WS(); a filter with a subquery gets its own WHERE branch, where
    MariaDB turns ``objectId IN (SELECT ...)`` into a semi-join instead of
    running the subquery once per object."""
    simple = [f for f in filters if not f.checked.subquery]
    branches = []
    if simple:
        parts = ", ".join(f"IF(({f.condition}), {int(f.id)}, NULL)" for f in simple)
        branches.append(f"SELECT objectId, CONCAT_WS(',', {parts}) AS m FROM objects HAVING m <> ''")
    branches += [f"SELECT objectId, '{int(f.id)}' FROM objects WHERE ({f.condition})"
                 for f in filters if f.checked.subquery]
    return " UNION ALL ".join(branches)


NO_HITS = {"watchlist_hits": "watchlist_id IN (-1)", "area_hits": "area_id IN (-1)"}
_HIT_RESOURCES = (("watchlist", "watchlists", "watchlist_hits", "watchlist_id"), ("area", "areas", "area_hits", "area_id"))


def _reads_hits(where_sql: str) -> bool:
    """Whether a filter may read a hit table (a superset: its SQL names one)."""
    lowered = where_sql.lower()
    return "watchlist_hits" in lowered or "area_hits" in lowered


def _owner_scopes(conn, owners: set[str]) -> dict[str, dict[str, str]]:
    """Per filter owner, the hit rows their filter may read: those of the watchlists and areas the owner
    may read (owned, or shared with them by name, through one of their JupyterHub groups, or with
    everyone: ``alertlab.api.access``'s rule, as for the owner's own SQL through the API). A filter never
    reveals whether an object hit a watchlist its owner cannot see. A filter runs with its owner's rights
    as a user, an admin's too (whose SQL through the API sees every hit). When the shares cannot be read,
    a filter sees its owner's own hits only, and ingest goes on."""
    if not owners:
        return {}
    from alertlab.api import access, hubgroups

    try:
        groups = hubgroups.of_names(owners)
        shared = {kind: access.shared_with_each(kind, groups, owners) for kind, *_ in _HIT_RESOURCES}
    except Exception as exc:  # noqa: BLE001 - the application database is unreachable: fail closed
        log.warning("filters: shares not readable (%s); filters see their owners' own hits only", exc)
        shared = {kind: {} for kind, *_ in _HIT_RESOURCES}
    names = sorted(owners)
    scopes: dict[str, dict[str, str]] = {owner: dict(NO_HITS) for owner in owners}
    for kind, table, hits, column in _HIT_RESOURCES:
        visible = {owner: {int(i) for i in shared[kind].get(owner, ()) if i.isdigit()} for owner in owners}
        for owner, ident in conn.exec_driver_sql(
                f"SELECT owner, id FROM {table} WHERE owner IN ({', '.join(['%s'] * len(names))})", tuple(names)):
            visible[owner].add(int(ident))
        for owner, ids in visible.items():
            if ids:
                scopes[owner][hits] = f"{column} IN ({','.join(str(i) for i in sorted(ids))})"
    return scopes


def _check(where_sql: str, extra: dict[str, str] | None = None) -> _Checked | RejectedQuery:
    """The guard's verdict on a filter, and what the evaluator needs to know about it."""
    try:
        condition = check_filter_where(where_sql, extra_filters=extra)
    except RejectedQuery as exc:
        return exc
    tree = sqlglot.parse_one(f"SELECT 1 FROM objects WHERE {condition}", dialect=DIALECT).args["where"].this
    reads_all = any(not isinstance(star.parent, exp.Count) for star in tree.find_all(exp.Star)) or any(
        j.args.get("method") for j in tree.find_all(exp.Join))  # SELECT *, t.*, NATURAL JOIN
    # every identifier counts as a column it may read: a superset is harmless
    columns = None if reads_all else frozenset(i.name.lower() for i in tree.find_all(exp.Identifier))
    return _Checked(condition, tree.find(exp.Query) is not None, columns)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _code(exc: Exception) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _message(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    text = str(args[1]) if len(args) > 1 else str(exc)
    return " ".join(text.split()) or type(exc).__name__
