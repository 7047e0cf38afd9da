"""Your watchlists, areas and filters, annotations, and a filter's matches, from
the client.

    import alertlab.client as al
    wl = al.create_watchlist("my SNe", cones=df)     # df with ra, dec[, radius, name] columns, or a CSV path
    wl.share(group="demo-team")                     # viewers; role="editor" to let them change it
    area = al.create_area("S230518h", moc)          # a mocpy MOC, FITS bytes or a FITS path
    f = al.create_filter("bright", "latest_mag < 16 AND ndet >= 3")
    al.dry_run("latest_mag < 16")                   # matches of the last days, night by night
    for event in al.matches(f.id, timeout=3600):    # its matches as the ingest finds them
        print(event["objectId"])
    al.annotate("ZTF23abcdefg", "mybroker", "SN Ia", classdict={"SN Ia": 0.9})
"""

from __future__ import annotations

import io
import os
import time
from typing import Iterator

from alertlab.client.api import Client
from alertlab.client.http import get_json, send, v1

ANNOTATION_BATCH = 10_000


class _Shared:
    """A watchlist, area or filter: its ``info`` (as the API describes it) and what you may do with it."""

    plural = ""

    def __init__(self, info: dict, client: Client | None = None):
        self.info = info
        self._client = client

    @property
    def id(self) -> int:
        return self.info["id"]

    @property
    def name(self) -> str:
        return self.info["name"]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.name!r} of {self.info['owner']} ({self.info['role']})>"

    def _path(self, rest: str = "") -> str:
        return v1(f"{self.plural}/{self.id}" + (f"/{rest}" if rest else ""))

    def refresh(self):
        self.info = get_json(self._path(), client=self._client)
        return self

    def update(self, **changes):
        """Change fields (name, description, active, ...): editors and the owner."""
        self.info = send("PATCH", self._path(), client=self._client, json=changes).json()
        return self

    def delete(self) -> None:
        """Delete it (the owner or an admin)."""
        send("DELETE", self._path(), client=self._client)

    def shares(self) -> list[dict]:
        return get_json(self._path("shares"), client=self._client)

    def share(self, *, group: str | None = None, user: str | None = None, everyone: bool = False,
              role: str = "viewer") -> dict:
        """Share with a hub group, a hub user, or every logged-in user (``everyone=True``, viewers only)."""
        kind, who = _grantee(group, user, everyone)
        return send("PUT", self._path("shares"), client=self._client,
                    json={"grantee_kind": kind, "grantee": who, "role": role}).json()

    def unshare(self, *, group: str | None = None, user: str | None = None, everyone: bool = False) -> None:
        kind, who = _grantee(group, user, everyone)
        send("DELETE", self._path("shares"), client=self._client,
             params={"grantee_kind": kind, "grantee": who or ""})

    def matches(self, since: str = "latest", wait: float = 10.0, timeout: float | None = None) -> Iterator[dict]:
        """Its match events as the ingest publishes them (see ``matches``)."""
        return _events(self._path("matches"), since, wait, timeout, self._client)


def _grantee(group, user, everyone) -> tuple[str, str | None]:
    given = [k for k, v in (("group", group), ("user", user), ("all", everyone)) if v]
    if len(given) != 1:
        raise ValueError("say who to share with: one of group=, user= or everyone=True")
    return given[0], {"group": group, "user": user, "all": None}[given[0]]


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)


class _WithHits(_Shared):
    def hits(self, limit: int = 1000, offset: int = 0):
        """Alerts that fell in it, latest first, as a DataFrame."""
        return _frame(get_json(self._path("hits"), client=self._client, params={"limit": limit, "offset": offset}))


# -- watchlists -------------------------------------------------------------------------------------

class Watchlist(_WithHits):
    plural = "watchlists"

    def cones(self, limit: int = 100_000, offset: int = 0):
        """Its cones (id, ra, dec, radius, name), a page at a time, as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(get_json(self._path("cones"), client=self._client,
                                     params={"limit": limit, "offset": offset}),
                            columns=["id", "ra", "dec", "radius", "name"])

    def upload(self, cones, *, strict: bool = False, replace: bool = False) -> dict:
        """Add cones: a DataFrame (columns ra, dec and optionally radius in arcsec and name), a CSV file
        path, CSV text or bytes. Rows with errors are left out and reported ({stored, rejected, errors
        [{line, reason}], ncones}); with ``strict`` nothing is stored if any row is bad (APIError 422)."""
        report = send("POST", self._path("cones"), client=self._client, params={"strict": strict, "replace": replace},
                      files={"file": ("cones.csv", _csv_bytes(cones), "text/csv")}, timeout=600).json()
        self.refresh()
        return report


def _csv_bytes(cones) -> bytes:
    if isinstance(cones, bytes):
        return cones
    if isinstance(cones, (str, os.PathLike)) and os.path.exists(cones):
        with open(cones, "rb") as fh:
            return fh.read()
    if isinstance(cones, str):
        return cones.encode()
    import pandas as pd

    frame = cones if isinstance(cones, pd.DataFrame) else pd.DataFrame(cones)
    keep = [c for c in frame.columns if str(c).lower() in ("ra", "dec", "decl", "radius", "name")]
    out = io.StringIO()
    frame[keep].to_csv(out, index=False)
    return out.getvalue().encode()


def watchlists(*, client: Client | None = None):
    """The watchlists you may see, as a DataFrame (a ``role`` column says what you are to each)."""
    return _frame(get_json(v1("watchlists"), client=client))


def watchlist(watchlist_id: int, *, client: Client | None = None) -> Watchlist:
    return Watchlist(get_json(v1(f"watchlists/{int(watchlist_id)}"), client=client), client)


def create_watchlist(name: str, cones=None, *, default_radius: float = 2.0, description: str | None = None,
                     active: bool = True, client: Client | None = None) -> Watchlist:
    """A new watchlist, with ``cones`` uploaded if given (see ``Watchlist.upload``; rows with errors
    are reported in ``wl.upload_report``)."""
    wl = Watchlist(send("POST", v1("watchlists"), client=client,
                        json={"name": name, "description": description, "default_radius": default_radius,
                              "active": active}).json(), client)
    wl.upload_report = wl.upload(cones) if cones is not None else None
    return wl


# -- areas ------------------------------------------------------------------------------------------

class Area(_WithHits):
    plural = "areas"

    def moc(self):
        """The area as a mocpy MOC."""
        from mocpy import MOC

        return MOC.from_fits(io.BytesIO(send("GET", self._path("moc"), client=self._client).content))


def areas(*, client: Client | None = None):
    """The areas you may see, as a DataFrame."""
    return _frame(get_json(v1("areas"), client=client))


def area(area_id: int, *, client: Client | None = None) -> Area:
    return Area(get_json(v1(f"areas/{int(area_id)}"), client=client), client)


def create_area(name: str, moc, *, description: str | None = None, active: bool = True,
                client: Client | None = None) -> Area:
    """A new sky area from a MOC: a mocpy MOC, its FITS bytes or a FITS file path."""
    if isinstance(moc, (str, os.PathLike)):
        with open(moc, "rb") as fh:
            data = fh.read()
    elif isinstance(moc, bytes):
        data = moc
    else:
        out = io.BytesIO()
        moc.serialize(format="fits").writeto(out)
        data = out.getvalue()
    form = {"name": name, "active": str(bool(active)).lower()}
    if description is not None:
        form["description"] = description
    return Area(send("POST", v1("areas"), client=client, data=form,
                     files={"file": ("moc.fits", data, "application/fits")}).json(), client)


# -- filters ----------------------------------------------------------------------------------------

class Filter(_Shared):
    plural = "filters"

    def dry_run(self, days: float | None = None) -> dict:
        """How many objects of the last days it matches, night by night, and how long it took."""
        return send("POST", self._path("dry-run"), client=self._client,
                    params={} if days is None else {"days": days}).json()


def filters(*, client: Client | None = None):
    """The filters you may see, as a DataFrame."""
    return _frame(get_json(v1("filters"), client=client))


def filter(filter_id: int, *, client: Client | None = None) -> Filter:  # noqa: A001 - the API's word
    return Filter(get_json(v1(f"filters/{int(filter_id)}"), client=client), client)


def create_filter(name: str, where_sql: str, *, active: bool = True, days: float | None = None,
                  client: Client | None = None) -> Filter:
    """A new filter (a WHERE condition over ``objects``). The server checks it and dry-runs it over
    the last ``days`` days: APIError 422 with the reason if it is refused."""
    body = {"name": name, "where_sql": where_sql, "active": active}
    if days is not None:
        body["days"] = days
    return Filter(send("POST", v1("filters"), client=client, json=body).json(), client)


def dry_run(where_sql: str, days: float | None = None, *, client: Client | None = None) -> dict:
    """Run a condition over the last ``days`` days without saving it: matches per night, time taken,
    and whether it would be accepted as an active filter."""
    body = {"where_sql": where_sql} if days is None else {"where_sql": where_sql, "days": days}
    return send("POST", v1("filters/dry-run"), client=client, json=body).json()


# -- annotations ------------------------------------------------------------------------------------

def annotate(objectId: str, annotator: str, classification: str, *, explanation: str | None = None,
             classdict=None, url: str | None = None, version: str | None = None,
             client: Client | None = None) -> dict:
    """Store one annotation (you must be in the hub group ``annotator:<annotator>``)."""
    item = {"objectId": objectId, "annotator": annotator, "classification": classification,
            "explanation": explanation, "classdict": classdict, "url": url, "version": version}
    return send("POST", v1("annotations"), client=client, json={k: v for k, v in item.items() if v is not None}).json()


def annotate_many(annotations, *, client: Client | None = None) -> dict:
    """Store many annotations (a DataFrame or a list of dicts with objectId, annotator, classification
    and optionally explanation, classdict, url, version), in batches."""
    import pandas as pd

    rows = annotations.to_dict("records") if isinstance(annotations, pd.DataFrame) else list(annotations)
    rows = [{k: v for k, v in r.items() if v is not None and not (isinstance(v, float) and v != v)} for r in rows]
    total = {"stored": 0, "published": 0}
    for start in range(0, len(rows), ANNOTATION_BATCH):
        done = send("POST", v1("annotations"), client=client,
                    json={"annotations": rows[start:start + ANNOTATION_BATCH]}).json()
        total = {k: total[k] + done[k] for k in total}
    return total


# -- match events -----------------------------------------------------------------------------------

def _events(path: str, since: str, wait: float, timeout: float | None, client) -> Iterator[dict]:
    cursor = since
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        poll = wait if remaining is None else max(0.0, min(wait, remaining))
        page = get_json(path, client=client, params={"cursor": cursor, "wait": poll})
        cursor = page["cursor"]
        yield from page["events"]


def matches(filter_id: int, *, since: str = "latest", wait: float = 10.0, timeout: float | None = None,
            kind: str = "filter", client: Client | None = None) -> Iterator[dict]:
    """The match events of one of your (or a shared) filters, as the ingest publishes them: an endless
    iterator (or one that stops after ``timeout`` seconds). ``since="latest"``: from now on; ``""``:
    from the oldest kept by Kafka. ``kind="watchlist"`` or ``"area"`` follows those instead."""
    plural = {"filter": "filters", "watchlist": "watchlists", "area": "areas"}[kind]
    return _events(v1(f"{plural}/{int(filter_id)}/matches"), since, wait, timeout, client)
