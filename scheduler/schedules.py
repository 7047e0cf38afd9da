"""The scheduler's Python API, called by the web API, the CLI and tests.

Every function takes the acting user (``owner``) first and only ever touches
that user's schedules, runs and notifications (someone else's are "not
found"). Schedules are rows of the `schedules` table; a change bumps the row's
``version`` and the scheduler service picks it up within a couple of seconds.

    create_schedule(owner, notebook, cron=..., timezone=..., parameters=...)      -> dict
    create_schedule(owner, notebook, on_filter=12, window=60, repeat="once")     -> dict
    list_schedules(owner) / get_schedule(owner, id) / update_schedule(owner, id, **changes)
    delete_schedule(owner, id) / pause(owner, id) / resume(owner, id)
    run_now(owner, id, parameters=None) -> run dict ; cancel(owner, run_id) -> run dict
    list_runs(owner, ...) / get_run(owner, run_id) / run_output(owner, run_id, "html" | "ipynb")
    never_again(owner, filter_id, objectId) / allow_again(...) / list_never_again(owner)
    list_notifications(owner) / mark_read(owner, ids)

Bad input raises ScheduleError (HTTP 422) with a message saying what is wrong;
a source that is someone else's raises ScheduleForbidden (403); an id that is
not the user's raises NotFound (404)."""

from __future__ import annotations

import json
import keyword
import re
from datetime import datetime
from pathlib import PurePosixPath

from alertlab.scheduler import ledger, notify, permissions, triggers
from alertlab.scheduler.errors import NotFound, ScheduleError
from alertlab.scheduler.store import dumps, engine, execute, iso, row, rows, utcnow

REPEAT = ("every", "once", "days")
MAX_PARAMETERS = 64 * 1024
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
LIMITS = {"timeout": (1, 7 * 86400), "retries": (0, 10), "window": (0, 86400), "max_runs_per_hour": (1, 3600),
          "memory_mb": (64, None)}

# The fields a caller may set, and their column.
FIELDS = {"name": "name", "notebook": "notebook", "parameters": "parameters", "kernel": "kernel",
          "cron": "cron", "timezone": "timezone", "interval": "interval_seconds", "on_kind": "alert_kind",
          "on_id": "alert_id", "window": "window_seconds", "max_runs_per_hour": "max_runs_per_hour",
          "repeat": "repeat_policy", "repeat_days": "repeat_days", "timeout": "timeout_seconds",
          "retries": "retries", "memory_mb": "memory_mb", "enabled": "enabled", "notify_on": "notify_on",
          "email": "notify_email", "webhook": "notify_webhook"}


# -- validation -------------------------------------------------------------------------------

def default_kernel() -> str:
    """"alertlab" when that kernelspec is installed, else "python3"."""
    from jupyter_client.kernelspec import KernelSpecManager

    return "alertlab" if "alertlab" in KernelSpecManager().find_kernel_specs() else "python3"


def check_kernel(name: str) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if name not in specs:
        raise ScheduleError(f"unknown kernel {name!r}: one of {', '.join(sorted(specs))}")
    return name


def check_notebook(path) -> str:
    """A notebook path relative to the owner's home, that stays inside it."""
    if not isinstance(path, str) or not path.strip():
        raise ScheduleError("notebook: give the path of a notebook in your home, e.g. 'nightly.ipynb'")
    text = path.strip()
    if "\x00" in text or len(text) > 1024:
        raise ScheduleError("notebook: not a usable path")
    if text.startswith("~/"):
        text = text[2:]
    p = PurePosixPath(text)
    if p.is_absolute():
        raise ScheduleError(f"notebook {path!r}: give the path relative to your home, e.g. 'nightly.ipynb'")
    if ".." in p.parts:
        raise ScheduleError(f"notebook {path!r} leaves your home ('..' is not allowed)")
    if p.suffix != ".ipynb":
        raise ScheduleError(f"notebook {path!r}: not a .ipynb file")
    return str(p)


def check_parameters(value) -> dict:
    """A JSON object (dict or JSON text) whose keys are Python names papermill can inject."""
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ScheduleError(f"parameters are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ScheduleError("parameters must be a JSON object ({\"name\": value, ...})")
    for key in value:
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
            raise ScheduleError(f"parameter name {key!r} is not a Python variable name")
        if key.startswith("alertlab_"):
            raise ScheduleError(f"parameter name {key!r} is reserved: the scheduler injects alertlab_run_id, "
                                "alertlab_schedule_id, alertlab_fire_time and alertlab_reason")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"parameters are not JSON: {exc}") from None
    if len(text) > MAX_PARAMETERS:
        raise ScheduleError(f"parameters are too large ({len(text)} bytes; at most {MAX_PARAMETERS})")
    return json.loads(text)


def _number(name: str, value, integer: bool = True):
    low, high = LIMITS[name]
    try:
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise ScheduleError(f"{name}: {value!r} is not a {'whole ' if integer else ''}number") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ScheduleError(f"{name}: {value!r} is out of range ({bound})")
    return number


def _emails(value) -> str | None:
    if not value:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(i).strip() for i in items if str(i).strip()]
    bad = [i for i in items if not _EMAIL.fullmatch(i)]
    if bad:
        raise ScheduleError(f"email: {bad[0]!r} is not an e-mail address")
    if len(items) > 10:
        raise ScheduleError("email: at most 10 addresses")
    return ",".join(items) or None


def _notify_on(value) -> str:
    if value is None:
        return "failure"
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(i).strip() for i in items if str(i).strip()]
    bad = [i for i in items if i not in notify.EVENTS]
    if bad:
        raise ScheduleError(f"notify_on: {bad[0]!r} is not one of {', '.join(notify.EVENTS)}")
    return ",".join(dict.fromkeys(items))


def _validate(owner: str, spec: dict, admin: bool | None, base: dict | None = None) -> dict:
    """The columns of a schedule from a caller's fields (``base``: the stored row being updated)."""
    unknown = set(spec) - set(FIELDS)
    if unknown:
        raise ScheduleError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if not isinstance(owner, str) or not owner.strip() or len(owner) > 255:
        raise ScheduleError("owner: a hub user name")
    cols = dict(base or {})
    for field, column in FIELDS.items():
        if field in spec:
            cols[column] = spec[field]
    trigger_fields = [f for f in ("cron", "interval", "on_kind") if spec.get(f) not in (None, "")]
    if base is None or trigger_fields:
        if len(trigger_fields) != 1:
            raise ScheduleError("give exactly one trigger: cron (with timezone), interval (seconds), or an alert "
                                "source (on_filter, on_watchlist, on_area or on_annotator)")
        kind = {"cron": "cron", "interval": "interval", "on_kind": "alert"}[trigger_fields[0]]
        cols["trigger_kind"] = kind
        for column in ("cron", "interval_seconds", "alert_kind", "alert_id"):
            if column not in {"cron": ["cron"], "interval": ["interval_seconds"],
                              "alert": ["alert_kind", "alert_id"]}[kind]:
                cols[column] = None
    cols["notebook"] = check_notebook(cols.get("notebook"))
    cols["name"] = (str(cols.get("name") or "").strip() or PurePosixPath(cols["notebook"]).stem)[:255]
    cols["parameters"] = check_parameters(cols.get("parameters"))
    cols["kernel"] = check_kernel(cols["kernel"]) if cols.get("kernel") else default_kernel()
    cols["timezone"] = str(triggers.zone(cols.get("timezone") or "UTC"))
    now = utcnow()
    if cols["trigger_kind"] == "cron":
        trigger = triggers.cron_trigger(cols["cron"], cols["timezone"])
        triggers.check_min_interval(trigger, cols["cron"])
        cols["cron"] = " ".join(str(cols["cron"]).split())
    elif cols["trigger_kind"] == "interval":
        triggers.interval_trigger(cols["interval_seconds"], now)
        cols["interval_seconds"] = float(cols["interval_seconds"])
    else:
        cols["alert_kind"], cols["alert_id"] = permissions.check_alert_source(
            owner, cols.get("alert_kind"), cols.get("alert_id"), admin)
    cols["window_seconds"] = _number("window", cols.get("window_seconds") or 0, integer=False)
    cols["max_runs_per_hour"] = _number("max_runs_per_hour", cols.get("max_runs_per_hour") or 10)
    cols["repeat_policy"] = cols.get("repeat_policy") or "every"
    if cols["repeat_policy"] not in REPEAT:
        raise ScheduleError(f"repeat: {cols['repeat_policy']!r} is not one of {', '.join(REPEAT)}")
    if cols["repeat_policy"] == "days":
        days = cols.get("repeat_days")
        try:
            days = float(days)
        except (TypeError, ValueError):
            raise ScheduleError("repeat='days' needs repeat_days, a number of days") from None
        if not days > 0:
            raise ScheduleError("repeat_days must be positive")
        cols["repeat_days"] = days
    else:
        cols["repeat_days"] = None
    cols["timeout_seconds"] = _number("timeout", cols.get("timeout_seconds") or 3600)
    cols["retries"] = _number("retries", cols.get("retries") or 0)
    if cols.get("memory_mb"):
        cols["memory_mb"] = _number("memory_mb", cols["memory_mb"])
    else:
        cols["memory_mb"] = None
    cols["enabled"] = 1 if cols.get("enabled", True) in (True, 1, "1", "true") else 0
    cols["notify_on"] = _notify_on(cols.get("notify_on"))
    cols["notify_email"] = _emails(cols.get("notify_email"))
    webhook = cols.get("notify_webhook") or None
    if webhook:
        if len(webhook) > 2048:
            raise ScheduleError("webhook: URL longer than 2048 characters")
        notify.check_webhook(webhook, resolve=False)
    cols["notify_webhook"] = webhook
    cols["owner"] = owner
    return cols


def _trigger_fields(cron=None, interval=None, on=None, on_filter=None, on_watchlist=None, on_area=None,
                    on_annotator=None) -> dict:
    sources = [(k, v) for k, v in (("filter", on_filter), ("watchlist", on_watchlist), ("area", on_area),
                                   ("annotation", on_annotator)) if v is not None]
    if on is not None:
        if isinstance(on, dict):
            sources.append((on.get("kind"), on.get("id")))
        elif isinstance(on, (tuple, list)) and len(on) == 2:
            sources.append((on[0], on[1]))
        else:
            raise ScheduleError("on: give {'kind': 'filter', 'id': 12} (or on_filter=12)")
    if len(sources) > 1:
        raise ScheduleError("give one alert source (on_filter, on_watchlist, on_area or on_annotator)")
    out = {}
    if cron is not None:
        out["cron"] = cron
    if interval is not None:
        out["interval"] = interval
    if sources:
        out["on_kind"], out["on_id"] = sources[0]
    return out


# -- rows as people see them -----------------------------------------------------------------

def _public(s: dict) -> dict:
    out = {k: s[k] for k in ("id", "owner", "name", "notebook", "kernel", "trigger_kind", "cron", "timezone",
                             "interval_seconds", "alert_kind", "alert_id", "window_seconds", "max_runs_per_hour",
                             "repeat_policy", "repeat_days", "timeout_seconds", "retries", "memory_mb",
                             "notify_on", "version")}
    out["parameters"] = json.loads(s["parameters"]) if isinstance(s["parameters"], str) else s["parameters"]
    out["enabled"] = bool(s["enabled"])
    out["email"] = s["notify_email"].split(",") if s.get("notify_email") else []
    out["webhook"] = s.get("notify_webhook")
    out["created"], out["updated"] = iso(s["created"]), iso(s["updated"])
    out["next_fire_times"] = []
    if s["enabled"] and s["trigger_kind"] in ("cron", "interval"):
        trigger = triggers.for_schedule(s)
        out["next_fire_times"] = [t.isoformat() for t in triggers.next_fire_times(trigger, 5)]
    return out


def _run_public(r: dict) -> dict:
    out = dict(r)
    for key in ("fire_time", "queued", "started", "ended"):
        if key in out:
            out[key] = iso(out[key])
    if isinstance(out.get("parameters"), str):
        out["parameters"] = json.loads(out["parameters"])
    if "has_output" in out:
        out["has_output"] = bool(out["has_output"])
    return out


def load(schedule_id: int) -> dict | None:
    """A stored schedule row (parameters decoded), whoever owns it; for the service and the workers."""
    with engine().connect() as conn:
        s = row(conn, "SELECT * FROM schedules WHERE id = :id", id=int(schedule_id))
    if s is not None:
        s["parameters"] = json.loads(s["parameters"])
    return s


def _own(owner: str, schedule_id) -> dict:
    try:
        sid = int(schedule_id)
    except (TypeError, ValueError):
        raise NotFound(f"no schedule {schedule_id!r}") from None
    s = load(sid)
    if s is None or not permissions.can_see(owner, s["owner"]):
        raise NotFound(f"no schedule {sid}")
    return s


# -- schedules ---------------------------------------------------------------------------------

def create_schedule(owner: str, notebook: str, *, cron: str | None = None, timezone: str = "UTC",
                    interval: float | None = None, on=None, on_filter=None, on_watchlist=None, on_area=None,
                    on_annotator=None, parameters=None, kernel: str | None = None, name: str | None = None,
                    timeout: int = 3600, retries: int = 0, memory_mb: int | None = None, window: float = 0,
                    max_runs_per_hour: int = 10, repeat: str = "every", repeat_days: float | None = None,
                    notify_on=("failure",), email=None, webhook: str | None = None, enabled: bool = True,
                    admin: bool | None = None) -> dict:
    """A new schedule of ``owner``'s ``notebook`` (a path in their home). Returns it, with its
    next five fire times for cron and interval triggers."""
    spec = dict(notebook=notebook, timezone=timezone, parameters=parameters, kernel=kernel, name=name,
                timeout=timeout, retries=retries, memory_mb=memory_mb, window=window,
                max_runs_per_hour=max_runs_per_hour, repeat=repeat, repeat_days=repeat_days, notify_on=notify_on,
                email=email, webhook=webhook, enabled=enabled)
    spec.update(_trigger_fields(cron, interval, on, on_filter, on_watchlist, on_area, on_annotator))
    cols = _validate(owner, spec, admin)
    now = utcnow()
    cols.update(created=now, updated=now, version=1)
    cols["parameters"] = dumps(cols["parameters"])
    names = list(cols)
    with engine().begin() as conn:
        sid = execute(conn, f"INSERT INTO schedules ({', '.join(names)}) VALUES "
                      f"({', '.join(':' + n for n in names)})", **cols).lastrowid
    return get_schedule(owner, sid)


def get_schedule(owner: str, schedule_id) -> dict:
    return _public(_own(owner, schedule_id))


def list_schedules(owner: str, notebook: str | None = None) -> list[dict]:
    """The owner's schedules (of one notebook when given), newest first."""
    sql, params = "SELECT * FROM schedules WHERE owner = :owner", {"owner": owner}
    if notebook is not None:
        sql += " AND notebook = :notebook"
        params["notebook"] = check_notebook(notebook)
    with engine().connect() as conn:
        found = rows(conn, sql + " ORDER BY id DESC", **params)
    return [_public(s) for s in found]


def update_schedule(owner: str, schedule_id, admin: bool | None = None, **changes) -> dict:
    """Change some fields (the same names as create_schedule's; a new trigger replaces the old)."""
    current = _own(owner, schedule_id)
    trigger_keys = ("cron", "interval", "on", "on_filter", "on_watchlist", "on_area", "on_annotator")
    trig = _trigger_fields(**{k: changes.pop(k) for k in trigger_keys if k in changes and changes[k] is not None})
    for k in trigger_keys:
        changes.pop(k, None)
    changes.update(trig)
    cols = _validate(owner, changes, admin, base=current)
    cols["parameters"] = dumps(cols["parameters"])
    cols.pop("id", None)
    cols.pop("created", None)
    cols["updated"] = utcnow()
    cols["version"] = current["version"] + 1
    with engine().begin() as conn:
        execute(conn, f"UPDATE schedules SET {', '.join(f'{c} = :{c}' for c in cols)} WHERE id = :sid",
                sid=current["id"], **cols)
    return get_schedule(owner, current["id"])


def delete_schedule(owner: str, schedule_id) -> None:
    """Delete the schedule, its runs, outputs and notifications; a running run is cancelled."""
    s = _own(owner, schedule_id)
    with engine().begin() as conn:
        execute(conn, "UPDATE runs SET cancel_requested = 1 WHERE schedule_id = :id AND status = 'running'",
                id=s["id"])
        execute(conn, "DELETE FROM schedules WHERE id = :id", id=s["id"])


def pause(owner: str, schedule_id) -> dict:
    return _set_enabled(owner, schedule_id, False)


def resume(owner: str, schedule_id) -> dict:
    return _set_enabled(owner, schedule_id, True)


def _set_enabled(owner: str, schedule_id, enabled: bool) -> dict:
    s = _own(owner, schedule_id)
    with engine().begin() as conn:
        execute(conn, "UPDATE schedules SET enabled = :e, updated = :now, version = version + 1 WHERE id = :id",
                e=int(enabled), now=utcnow(), id=s["id"])
    return get_schedule(owner, s["id"])


# -- runs --------------------------------------------------------------------------------------

def run_now(owner: str, schedule_id, parameters=None) -> dict:
    """Queue a run at once (``parameters`` override the schedule's for this run)."""
    s = _own(owner, schedule_id)
    extra = check_parameters(parameters)
    run_id = ledger.enqueue(s, "manual", datetime.now().astimezone(), extra)
    if run_id is None:  # two requests in the same microsecond
        raise ScheduleError("a run was queued at this very moment; try again")
    return get_run(owner, run_id)


def _own_run(owner: str, run_id) -> dict:
    try:
        rid = int(run_id)
    except (TypeError, ValueError):
        raise NotFound(f"no run {run_id!r}") from None
    r = ledger.get(rid)
    if r is None or not permissions.can_see(owner, r["owner"]):
        raise NotFound(f"no run {rid}")
    return r


def get_run(owner: str, run_id) -> dict:
    return _run_public(_own_run(owner, run_id))


def list_runs(owner: str, schedule_id=None, status: str | None = None, since: datetime | None = None,
              until: datetime | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
    if status is not None and status not in ledger.STATUSES:
        raise ScheduleError(f"status: {status!r} is not one of {', '.join(ledger.STATUSES)}")
    if schedule_id is not None:
        _own(owner, schedule_id)
    if not 1 <= int(limit) <= 1000:
        raise ScheduleError("limit: between 1 and 1000")
    return [_run_public(r) for r in ledger.search(owner, schedule_id, status, since, until, limit, offset)]


def cancel(owner: str, run_id) -> dict:
    r = _own_run(owner, run_id)
    ledger.cancel(r["id"])
    return get_run(owner, r["id"])


def run_output(owner: str, run_id, fmt: str = "html") -> bytes:
    """The executed notebook ('ipynb') or its HTML ('html')."""
    if fmt not in ("html", "ipynb"):
        raise ScheduleError("format: 'html' or 'ipynb'")
    r = _own_run(owner, run_id)
    data = ledger.output(r["id"], fmt)
    if data is None:
        raise NotFound(f"run {r['id']} has no stored {fmt} output (status {r['status']})")
    return data


# -- never again ------------------------------------------------------------------------------

def never_again(owner: str, filter_id, objectId: str, kind: str = "filter", note: str | None = None,
                admin: bool | None = None) -> dict:
    """From now on, ``objectId`` matching ``owner``'s ``kind`` source ``filter_id`` triggers none
    of ``owner``'s schedules."""
    kind, ident = permissions.check_alert_source(owner, kind, filter_id, admin)
    if not isinstance(objectId, str) or not objectId.strip() or len(objectId) > 64:
        raise ScheduleError("objectId: the object's id (at most 64 characters)")
    with engine().begin() as conn:
        execute(conn, """
            INSERT INTO never_again (owner, source_kind, source_id, objectId, note, created)
            VALUES (:owner, :kind, :ident, :obj, :note, :now)
            ON DUPLICATE KEY UPDATE note = VALUES(note)""",
            owner=owner, kind=kind, ident=ident, obj=objectId.strip(), note=note, now=utcnow())
    return {"owner": owner, "kind": kind, "id": ident, "objectId": objectId.strip(), "note": note}


def allow_again(owner: str, filter_id, objectId: str, kind: str = "filter") -> bool:
    """Undo never_again. True if there was a mark."""
    kind, ident = permissions.normalise_source(kind, filter_id)
    with engine().begin() as conn:
        return execute(conn, "DELETE FROM never_again WHERE owner = :owner AND source_kind = :kind AND "
                       "source_id = :ident AND objectId = :obj", owner=owner, kind=kind, ident=ident,
                       obj=objectId).rowcount > 0


def list_never_again(owner: str) -> list[dict]:
    with engine().connect() as conn:
        found = rows(conn, "SELECT source_kind AS kind, source_id AS id, objectId, note, created FROM never_again "
                     "WHERE owner = :owner ORDER BY created DESC", owner=owner)
    for r in found:
        r["created"] = iso(r["created"])
    return found


# -- notifications ---------------------------------------------------------------------------

def list_notifications(owner: str, unread: bool = False, limit: int = 100) -> list[dict]:
    sql = "SELECT * FROM notifications WHERE owner = :owner"
    if unread:
        sql += " AND read_at IS NULL"
    with engine().connect() as conn:
        found = rows(conn, sql + " ORDER BY id DESC LIMIT :limit", owner=owner, limit=int(limit))
    for n in found:
        n["delivery"] = json.loads(n["delivery"])
        n["created"], n["read_at"] = iso(n["created"]), iso(n["read_at"])
    return found


def mark_read(owner: str, ids: list[int] | None = None) -> int:
    """Mark the owner's notifications read (these ids, or all). Returns how many changed."""
    sql = "UPDATE notifications SET read_at = :now WHERE owner = :owner AND read_at IS NULL"
    params = {"owner": owner, "now": utcnow()}
    if ids is not None:
        if not ids:
            return 0
        sql += " AND id IN :ids"
        params["ids"] = tuple(int(i) for i in ids)
    import sqlalchemy as sa

    with engine().begin() as conn:
        stmt = sa.text(sql)
        if ids is not None:
            stmt = stmt.bindparams(sa.bindparam("ids", expanding=True))
        return conn.execute(stmt, params).rowcount
