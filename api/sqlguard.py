"""The guard in front of the SQL users type: one read-only SELECT over the
alert tables they may see, nothing else.

The guard is the first of several layers (as in Datasette): the SQL is then
run by the read-only database account, under a per-statement time limit and a
row limit (``alertlab.api.readonly``). The guard is what turns a hostile
query into a clear one-line reason instead of a server error, and it is what
keeps the blob table, the application's own tables and the server's system
schemas out of reach even though the read-only account may SELECT them.

How a query is checked:

1. Raw text: a size limit, and MariaDB *executable* comments (``/*! ... */``,
   ``/*M! ... */``) are refused outright: MariaDB runs their content while
   every other parser (sqlglot included) skips it.
2. Tokens (sqlglot's MySQL tokenizer, which knows quotes, backticks and the
   three comment styles): exactly one statement, starting with SELECT, WITH
   or "("; no INTO (OUTFILE, DUMPFILE, @variables); no locking clause.
3. Syntax tree (sqlglot, MySQL dialect): the statement is a query; tables
   are only from ``allowed_tables`` (CTE names are fine where MariaDB sees
   them), with no schema qualifier but the alert database's; no user or
   system variables, placeholders, denied functions or schema-qualified
   function calls.
4. The SQL to execute is *regenerated* from the checked tree, without
   comments, and re-checked: the regenerated text must parse to a tree that
   passes the same checks and regenerates to the very same text. Sending
   the regenerated text rather than the user's means that whatever MariaDB
   parses is exactly what was checked: a comment or quoting trick on which
   sqlglot and MariaDB disagree cannot smuggle anything through, because
   the comment is gone and the quoting is sqlglot's own. It is also what
   makes ``extra_filters`` (a tree rewrite) possible. The price is that a
   query sqlglot cannot parse is refused even if MariaDB would accept it.
5. Denied function names are checked on the tokens of the regenerated text,
   i.e. on what MariaDB will see, whatever class sqlglot mapped them to.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from alertlab.core import settings
from alertlab.core.errors import AlertLabError

USER_TABLES: frozenset[str] = frozenset({
    "objects", "detections", "nondetections", "forced_photometry", "annotations", "annotations_history",
    "watchlist_hits", "area_hits",
})
"""The alert tables users may read. Not: cutouts (blobs, served by the API),
filters, watchlists, watchlist_cones, areas (other users' definitions, served
by the API per owner), ingest_rejects, alembic_version."""

MAX_SQL_CHARS = 100_000
"""Longer SQL is refused before parsing (sqlglot is pure Python)."""

MAX_FILTER_CHARS = 20_000

DENIED_FUNCTIONS: frozenset[str] = frozenset({
    # sleep or burn CPU on purpose
    "SLEEP", "BENCHMARK",
    # the server's file system
    "LOAD_FILE",
    # named locks shared by every session of the server (used by applications)
    "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", "IS_FREE_LOCK", "IS_USED_LOCK",
    # wait for replication: block a connection for as long as the caller likes
    "MASTER_POS_WAIT", "MASTER_GTID_WAIT", "SOURCE_POS_WAIT", "WAIT_FOR_EXECUTED_GTID_SET",
    "WAIT_UNTIL_SQL_THREAD_AFTER_GTIDS", "WSREP_SYNC_WAIT_UPTO_GTID", "WSREP_LAST_WRITTEN_GTID",
    "WSREP_LAST_SEEN_GTID", "BINLOG_GTID_POS",
    # sequences change state
    "NEXTVAL", "LASTVAL", "SETVAL",
    # change the session state of a pooled connection
    "LAST_INSERT_ID",
    # well-known UDFs that run programs or SQL elsewhere
    "SYS_EXEC", "SYS_EVAL", "SYS_GET", "SYS_SET", "SPIDER_DIRECT_SQL", "SPIDER_BG_DIRECT_SQL",
    "SPIDER_PING_TABLE", "SPIDER_COPY_TABLES", "SPIDER_FLUSH_TABLE_MON_CACHE",
    # key files on the server
    "DES_ENCRYPT", "DES_DECRYPT",
    # who and what the server is: nothing a query over alerts needs
    "USER", "CURRENT_USER", "SESSION_USER", "SYSTEM_USER", "CURRENT_ROLE", "VERSION",
})

SYSTEM_SCHEMAS = frozenset({"information_schema", "mysql", "performance_schema", "sys"})

_EXECUTABLE_COMMENT = re.compile(r"/\*M?!")
_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# these are functions even without parentheses
_BARE_DENIED = frozenset({"CURRENT_USER", "CURRENT_ROLE"})
# statements inside a query's tree: never allowed anywhere
_STATEMENTS = (exp.DML, exp.DDL, exp.Command, exp.Set, exp.Show, exp.Describe, exp.Use, exp.Transaction,
               exp.Commit, exp.Rollback, exp.Kill, exp.LoadData, exp.Pragma, exp.Copy, exp.Analyze,
               exp.Grant, exp.Revoke, exp.Cache, exp.Uncache, exp.Refresh, exp.Execute, exp.Declare)


class RejectedQuery(AlertLabError):
    """The SQL is not something AlertLab runs for a user; ``reason`` says why, in one line."""

    def __init__(self, reason: str):
        self.reason = " ".join(str(reason).split())
        super().__init__(self.reason)


class MariaDB(MySQL):
    """sqlglot's MySQL dialect, generating what MariaDB (not MySQL 8) understands."""

    class Generator(MySQL.generator_class):
        TRANSFORMS = {
            **MySQL.generator_class.TRANSFORMS,
            # MySQL 8 has REGEXP_LIKE(); MariaDB only the operator
            exp.RegexpLike: lambda self, e: self.binary(e, "REGEXP"),
            # MariaDB has MEDIAN() (a window function) and UTC_DATE(); sqlglot would rewrite both
            exp.Median: lambda self, e: self.func("MEDIAN", e.this),
            exp.UtcDate: lambda self, e: "UTC_DATE()",
        }


DIALECT = MariaDB()
"""The sqlglot dialect used to read and write SQL for MariaDB."""


def check_select(sql: str, allowed_tables: frozenset[str] = USER_TABLES,
                 extra_filters: dict[str, str] | None = None) -> str:
    """Check a user's SELECT and return the SQL to execute (regenerated by sqlglot).

    ``extra_filters`` maps a table to a condition on its rows (trusted SQL from
    the API, e.g. ``{"watchlist_hits": "watchlist_id IN (1,2)"}``): every read
    of that table is rewritten to read only those rows, as
    ``(SELECT * FROM watchlist_hits WHERE ...) AS <alias or table name>``.
    Raises RejectedQuery."""
    allowed = frozenset(t.lower() for t in allowed_tables)
    tree = _checked_tree(sql, allowed, MAX_SQL_CHARS)
    if extra_filters:
        _restrict_tables(tree, {t.lower(): c for t, c in extra_filters.items()}, allowed)
    return _regenerate(tree, allowed)


def check_filter_where(where_sql: str, allowed_tables: frozenset[str] = USER_TABLES,
                       extra_filters: dict[str, str] | None = None) -> str:
    """Check a user filter, a boolean WHERE condition over the columns of
    ``objects``; return the normalised condition. ``extra_filters`` restricts
    tables as for ``check_select`` (the ingest passes the filter owner's
    watchlists and areas, so a filter cannot see other users' hits). Raises
    RejectedQuery."""
    if not where_sql or not where_sql.strip():
        raise RejectedQuery("the filter is empty: write a condition such as g_ndet >= 3 AND latest_mag < 18")
    allowed = frozenset(t.lower() for t in allowed_tables) | {"objects"}
    condition = _checked_condition(where_sql, "objects", allowed, MAX_FILTER_CHARS)
    if extra_filters:
        _restrict_tables(condition, {t.lower(): c for t, c in extra_filters.items()}, allowed)
    return _regenerate(condition, allowed, condition_of="objects")


# -- the checks ------------------------------------------------------------------------------------

def _checked_tree(sql: str, allowed: frozenset[str], max_chars: int) -> exp.Expression:
    if not isinstance(sql, str):
        raise RejectedQuery("the query must be a string")
    if len(sql) > max_chars:
        raise RejectedQuery(f"the query is too long ({len(sql):,} characters; at most {max_chars:,})")
    if _EXECUTABLE_COMMENT.search(sql):
        raise RejectedQuery("executable comments (/*! ... */) are not allowed")
    tokens = _tokens(sql)
    _check_tokens(tokens)
    try:
        trees = [t for t in sqlglot.parse(sql, dialect=DIALECT) if t is not None]
    except ParseError as exc:
        raise RejectedQuery(_parse_error(exc)) from None
    except (TokenError, RecursionError, ValueError) as exc:
        raise RejectedQuery(_other_parse_error(exc)) from None
    if len(trees) != 1:  # the token check counted one; sqlglot must agree
        raise RejectedQuery(f"only one SELECT statement is allowed (found {len(trees)} statements)")
    tree = trees[0]
    _check_tree(tree, allowed)
    return tree


def _tokens(sql: str) -> list:
    try:
        return DIALECT.tokenize(sql)
    except (TokenError, ValueError) as exc:
        raise RejectedQuery(_other_parse_error(exc)) from None


def _check_tokens(tokens: list) -> None:
    statements: list[list] = [[]]
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(tok)
    statements = [s for s in statements if s]
    if not statements:
        raise RejectedQuery("the query is empty")
    if len(statements) > 1:
        raise RejectedQuery(f"only one SELECT statement is allowed (found {len(statements)} statements)")
    toks = statements[0]
    first = toks[0]
    if first.token_type not in (TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN):
        raise RejectedQuery(f"only SELECT statements are allowed (this is a {first.text.upper()} statement)")
    for i, tok in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if tok.token_type == TokenType.INTO:
            what = nxt.text.upper() if nxt is not None else ""
            if nxt is not None and nxt.token_type in (TokenType.PARAMETER, TokenType.SESSION_PARAMETER):
                what = "@variable"
            elif what not in ("OUTFILE", "DUMPFILE"):
                what = "a variable" if what else ""
            raise RejectedQuery(f"INTO {what} is not allowed: a query can only return rows".replace("  ", " "))
        if tok.token_type == TokenType.FOR and nxt is not None and nxt.text.upper() in ("UPDATE", "SHARE"):
            raise RejectedQuery("locking clauses (FOR UPDATE / LOCK IN SHARE MODE) are not allowed")
        if tok.token_type == TokenType.LOCK and nxt is not None and nxt.token_type == TokenType.IN:
            raise RejectedQuery("locking clauses (FOR UPDATE / LOCK IN SHARE MODE) are not allowed")


def _check_tree(tree: exp.Expression, allowed: frozenset[str]) -> None:
    if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)) or (
            isinstance(tree, exp.Subquery) and not isinstance(tree.unnest(), exp.Query)):
        raise RejectedQuery(f"only SELECT statements are allowed (this is {_kind(tree)})")
    for node in tree.walk():
        if isinstance(node, _STATEMENTS):
            raise RejectedQuery(f"only SELECT statements are allowed (found {_kind(node)} inside the query)")
        if isinstance(node, exp.Into):
            raise RejectedQuery("INTO is not allowed: a query can only return rows")
        if isinstance(node, exp.Lock):
            raise RejectedQuery("locking clauses (FOR UPDATE / LOCK IN SHARE MODE) are not allowed")
        if isinstance(node, exp.SessionParameter):
            raise RejectedQuery(f"system variables (@@{node.name}) are not allowed")
        if isinstance(node, exp.Parameter):
            raise RejectedQuery(f"user variables (@{node.name}) are not allowed")
        if isinstance(node, exp.Placeholder):
            raise RejectedQuery("parameter placeholders (?) are not allowed: write the values into the query")
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            raise RejectedQuery(f"schema-qualified function calls ({node.sql(dialect=DIALECT)}) are not allowed")
        if isinstance(node, exp.Anonymous) and node.name.upper() in DENIED_FUNCTIONS:
            raise RejectedQuery(f"function {node.name.upper()} is not allowed")
        if isinstance(node, exp.Table):
            _check_table(node, allowed)
        if isinstance(node, exp.Var) and not _WORD.match(node.name):
            # sqlglot writes a Var's text back verbatim: only plain words (units, charsets) may pass
            raise RejectedQuery(f"this SQL is not supported: {node.name[:80]!r}")


def _check_table(table: exp.Table, allowed: frozenset[str]) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise RejectedQuery(f"this table expression is not supported: {table.sql(dialect=DIALECT)}")
    name = table.name
    shown = ".".join(p.name for p in table.parts)
    if table.args.get("catalog") is not None:
        raise RejectedQuery(f"table {shown} is not available: {_allowed_text(allowed)}")
    db = table.args.get("db")
    if db is not None:
        schema = db.name
        if schema.lower() in SYSTEM_SCHEMAS:
            raise RejectedQuery(f"table {shown} is not available: system schemas cannot be queried; "
                                f"{_allowed_text(allowed)}")
        if schema != settings.get("ALERTLAB_ALERTS_DB"):
            raise RejectedQuery(f"table {shown} is not available: only the alert database "
                                f"{settings.get('ALERTLAB_ALERTS_DB')} can be queried; {_allowed_text(allowed)}")
    elif name.lower() in _visible_ctes(table):
        return
    elif name.lower() == "dual" and not table.this.quoted:
        return  # MariaDB's DUAL keyword (dropped before the SQL is generated)
    if name.lower() not in allowed:
        raise RejectedQuery(f"table {shown} is not available: {_allowed_text(allowed)}")


def _allowed_text(allowed: frozenset[str]) -> str:
    return "allowed tables are " + ", ".join(sorted(allowed))


def _visible_ctes(node: exp.Expression) -> set[str]:
    """Names of the CTEs MariaDB resolves an unqualified table name to, at
    ``node``. A CTE body sees the earlier CTEs of its WITH (and itself, with
    RECURSIVE); a query sees all of its own CTEs and those of enclosing
    queries. CTE names compare case-insensitively, as in MariaDB."""
    names: set[str] = set()
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = parent.expressions
            index = next((i for i, c in enumerate(ctes) if c is child), len(ctes))
            upto = index + 1 if parent.args.get("recursive") else index
            names |= {c.alias_or_name.lower() for c in ctes[:upto]}
        else:
            with_ = _with_of(parent)
            if with_ is not None and with_ is not child:
                names |= {c.alias_or_name.lower() for c in with_.expressions}
        child, parent = parent, parent.parent
    return names


def _with_of(node: exp.Expression) -> exp.With | None:
    for key in ("with_", "with"):
        value = node.args.get(key)
        if isinstance(value, exp.With):
            return value
    return None


def _checked_condition(where_sql: str, table: str, allowed: frozenset[str], max_chars: int) -> exp.Expression:
    """Parse ``where_sql`` as the WHERE of ``SELECT objectId FROM <table>``
    and make sure it is nothing but that condition."""
    if len(where_sql) > max_chars:
        raise RejectedQuery(f"the filter is too long ({len(where_sql):,} characters; at most {max_chars:,})")
    # the newline ends a trailing "-- comment" so it cannot swallow anything we add
    tree = _checked_tree(f"SELECT objectId FROM {table} WHERE {where_sql}\n", allowed, max_chars + 100)
    shape_ok = (
        isinstance(tree, exp.Select)
        and {k for k, v in tree.args.items() if v not in (None, [], False)} <= {"expressions", "from", "from_",
                                                                                 "where"}
        and not tree.args.get("joins")
        and len(tree.expressions) == 1 and isinstance(tree.expressions[0], exp.Column)
        and tree.expressions[0].name == "objectId" and not tree.expressions[0].table
    )
    source = _from_of(tree) if shape_ok else None
    if not (shape_ok and isinstance(source, exp.Table) and source.name == table and not source.alias
            and source.args.get("db") is None and tree.args.get("where") is not None):
        raise RejectedQuery("a filter must be a single WHERE condition (no UNION, GROUP BY, ORDER BY, LIMIT, "
                            "and no statement after it)")
    condition = tree.args["where"].this
    for node in _outside_subqueries(condition):
        if isinstance(node, exp.AggFunc):
            raise RejectedQuery(f"aggregate functions ({node.sql_name()}) are only allowed inside a subquery "
                                "of a filter")
        if isinstance(node, exp.Window):
            raise RejectedQuery("window functions (OVER) are not allowed in a filter")
    return condition


def _from_of(select: exp.Select) -> exp.Expression | None:
    source = select.args.get("from_") or select.args.get("from")
    return source.this if source is not None else None


def _outside_subqueries(node: exp.Expression):
    """The nodes of ``node`` that are not inside a subquery."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for child in current.iter_expressions():
            if not isinstance(child, (exp.Query, exp.Subquery)):
                stack.append(child)


def _restrict_tables(tree: exp.Expression, conditions: dict[str, str], allowed: frozenset[str]) -> None:
    """Replace each read of a restricted base table by a subquery of its allowed rows."""
    parsed = {}
    for table, condition in conditions.items():
        try:
            parsed[table] = _checked_condition(condition, table, allowed | {table}, MAX_SQL_CHARS)
        except RejectedQuery as exc:  # the API's own SQL: a bug, not a user error
            raise ValueError(f"extra_filters[{table!r}] is not a valid condition: {exc.reason}") from None
    targets = [t for t in tree.find_all(exp.Table)
               if t.name.lower() in parsed and not (t.args.get("db") is None and t.name.lower() in _visible_ctes(t))]
    rewritten = set()
    for table in targets:
        key = table.name.lower()
        alias = table.args.get("alias")
        inner = table.copy()
        inner.set("alias", None)
        sub = exp.select("*").from_(inner).where(parsed[key].copy())
        alias = alias.copy() if alias is not None else exp.TableAlias(this=table.this.copy())
        table.replace(exp.Subquery(this=sub, alias=alias))
        rewritten.add(key)
    # `alerts.watchlist_hits.col` would no longer resolve: the derived table has no schema
    for column in tree.find_all(exp.Column):
        if column.args.get("db") is not None and column.table.lower() in rewritten:
            column.set("db", None)
            column.set("catalog", None)


# -- regeneration ----------------------------------------------------------------------------------

def _regenerate(tree: exp.Expression, allowed: frozenset[str], condition_of: str | None = None) -> str:
    """The SQL text of a checked tree, re-checked as a round trip (see the module docstring)."""
    _drop_from_dual(tree)
    try:
        text = tree.sql(dialect=DIALECT, comments=False)
        if condition_of is None:
            again = _checked_tree(text, allowed, 4 * MAX_SQL_CHARS)
        else:
            again = _checked_condition(text, condition_of, allowed, 4 * MAX_SQL_CHARS)
        _drop_from_dual(again)
        text_again = again.sql(dialect=DIALECT, comments=False)
    except RecursionError:
        raise RejectedQuery("the query is too deeply nested") from None
    if text_again != text:
        raise RejectedQuery("the query uses syntax AlertLab cannot normalise safely; please simplify it")
    _check_functions(text)
    return text


def _drop_from_dual(tree: exp.Expression) -> None:
    """``SELECT 1 FROM DUAL`` is ``SELECT 1``; sqlglot would quote DUAL into a table name."""
    for select in list(tree.find_all(exp.Select)):
        source = _from_of(select)
        if (isinstance(source, exp.Table) and source.name.lower() == "dual" and not source.this.quoted
                and source.args.get("db") is None and not source.alias and not select.args.get("joins")):
            select.set("from_" if "from_" in select.args else "from", None)


def _check_functions(text: str) -> None:
    tokens = _tokens(text)
    for i, tok in enumerate(tokens):
        name = tok.text.upper()
        if tok.token_type == TokenType.STRING:
            continue
        followed_by_paren = i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN
        if (followed_by_paren and name in DENIED_FUNCTIONS) or name in _BARE_DENIED:
            raise RejectedQuery(f"function {name} is not allowed")


# -- messages --------------------------------------------------------------------------------------

def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return f"a {str(node.this).upper()} statement"
    name = type(node).__name__.upper()
    return f"a {name} statement" if isinstance(node, _STATEMENTS) else f"an expression ({name})"


def _parse_error(exc: ParseError) -> str:
    if exc.errors:
        err = exc.errors[0]
        near = (err.get("highlight") or "").strip()
        where = f" at line {err.get('line')}, column {err.get('col')}"
        return (f"the SQL could not be parsed: {err.get('description')}{where}"
                + (f" (near {near!r})" if near else ""))
    return _other_parse_error(exc)


def _other_parse_error(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "the query is too deeply nested"
    if isinstance(exc, TokenError):
        return "the SQL could not be read: a quote, backtick or comment is not closed"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    return "the SQL could not be parsed: " + (text[0][:200] if text else type(exc).__name__)
