"""Alert data from the client: cone search, one object with its light curve and
cutouts, and asynchronous queries.

    import alertlab.client as al
    al.cone(150.1, 2.2, 30)                 # DataFrame, nearest first (arcsec column)
    obj = al.object("ZTF23abcdefg")
    obj.lightcurve                          # DataFrame: detections, upper limits, forced photometry
    obj.cutout("difference")                # astropy HDUList of the latest alert's stamp
    job = al.query_async("SELECT ...", limit=5_000_000)
    df = job.result()                       # waits, then a DataFrame
"""

from __future__ import annotations

import io
import time
from functools import cached_property

from alertlab.client.api import APIError, Client
from alertlab.client.http import get_json, send, v1

LIGHTCURVE_COLUMNS = ["kind", "mjd", "band", "mag", "magerr", "flux", "fluxerr", "diffmaglim", "detectionId",
                      "reliability", "isdiffpos", "ra", "decl"]


def cone(ra: float, dec: float, radius: float, *, mode: str = "all", limit: int = 1000,
         client: Client | None = None):
    """Objects within ``radius`` arcsec of (``ra``, ``dec``) degrees, nearest first, as a DataFrame
    (with an ``arcsec`` column); ``mode="count"`` returns how many (an int), ``mode="nearest"`` the
    nearest one (a one-row DataFrame, empty when none)."""
    import pandas as pd

    found = get_json(v1("cone"), client=client,
                     params={"ra": ra, "dec": dec, "radius": radius, "mode": mode, "limit": limit})
    if mode == "count":
        return found["count"]
    frame = pd.DataFrame(found["objects"], columns=["objectId", "survey", "ra", "decl", "arcsec", "ndet",
                                                    "firstmjd", "lastmjd", "latest_mag", "latest_band"])
    frame.attrs["count"] = found["count"]
    frame.attrs["truncated"] = found["truncated"]
    return frame


class AlertObject:
    """One object: ``row`` (its features), ``lightcurve`` and the separate tables, annotations,
    hits, and its cutouts."""

    def __init__(self, detail: dict, client: Client | None = None):
        self._detail = detail
        self._client = client
        self.objectId = detail["object"]["objectId"]

    def __repr__(self) -> str:
        o = self._detail["object"]
        return (f"<AlertObject {self.objectId} ({o['survey']}) ra={o['ra']:.5f} dec={o['decl']:.5f} "
                f"ndet={o['ndet']}>")

    @cached_property
    def row(self):
        """The object's row of ``objects`` (docs/schema.md) as a pandas Series."""
        import pandas as pd

        return pd.Series(self._detail["object"], name=self.objectId)

    def _frame(self, key: str):
        import pandas as pd

        return pd.DataFrame(self._detail[key])

    @property
    def detections(self):
        return self._frame("detections")

    @property
    def nondetections(self):
        return self._frame("nondetections")

    @property
    def forced_photometry(self):
        return self._frame("forced_photometry")

    @property
    def annotations(self):
        return self._frame("annotations")

    @property
    def watchlist_hits(self):
        return self._frame("watchlist_hits")

    @property
    def area_hits(self):
        return self._frame("area_hits")

    @cached_property
    def lightcurve(self):
        """Detections, upper limits (``diffmaglim``) and forced photometry in one table by time, with a
        ``kind`` column (detection, nondetection, forced)."""
        import pandas as pd

        rows = [{"kind": "detection", **d} for d in self._detail["detections"]]
        rows += [{"kind": "nondetection", **d} for d in self._detail["nondetections"]]
        rows += [{"kind": "forced", **d} for d in self._detail["forced_photometry"]]
        frame = pd.DataFrame(rows, columns=LIGHTCURVE_COLUMNS)
        return frame.sort_values(["mjd", "kind", "band"], kind="stable").reset_index(drop=True)

    def _with_cutouts(self) -> int:
        with_alert = [d["detectionId"] for d in self._detail["detections"] if d.get("has_alert")]
        if not with_alert:
            raise APIError(404, f"{self.objectId} has no detection with cutouts")
        return with_alert[-1]

    def cutout(self, kind: str = "science", detectionId: int | None = None, format: str = "fits",
               size: int = 256):
        """One stamp (``science``, ``template``, ``difference``) of ``detectionId`` (default: the latest
        detection that came with an alert): an astropy HDUList, or the PNG's bytes for ``format="png"``."""
        detection = self._with_cutouts() if detectionId is None else int(detectionId)
        r = send("GET", v1(f"cutouts/{detection}/{kind}"), client=self._client,
                 params={"format": format, "size": size})
        if format == "png":
            return r.content
        from astropy.io import fits

        return fits.open(io.BytesIO(r.content))

    def cutouts(self, detectionId: int | None = None) -> dict:
        """The three stamps of a detection (default: the latest with an alert): {kind: HDUList}."""
        detection = self._with_cutouts() if detectionId is None else int(detectionId)
        return {kind: self.cutout(kind, detection) for kind in ("science", "template", "difference")}


def object(objectId: str, *, client: Client | None = None) -> AlertObject:  # noqa: A001 - the API's word
    """One object with its light curve, annotations and the hits you may see (APIError 404 if unknown)."""
    return AlertObject(get_json(v1(f"objects/{objectId}"), client=client), client)


class Job:
    """An asynchronous query (``query_async``): its ``status``, ``wait()`` and ``result()``."""

    def __init__(self, info: dict, client: Client | None = None):
        self.info = info
        self.id = info["id"]
        self._client = client

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.info['status']}>"

    @property
    def status(self) -> str:
        return self.refresh()["status"]

    def refresh(self) -> dict:
        self.info = get_json(v1(f"query/jobs/{self.id}"), client=self._client)
        return self.info

    def wait(self, timeout: float | None = None, every: float = 1.0) -> dict:
        """Until the job is done (or failed, cancelled: APIError with the reason); TimeoutError after ``timeout``."""
        started = time.monotonic()
        delay = 0.1
        while True:
            info = self.refresh()
            if info["status"] == "done":
                return info
            if info["status"] in ("failed", "cancelled"):
                raise APIError(400, info.get("error") or info["status"])
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"query job {self.id} is still {info['status']} after {timeout} s")
            time.sleep(delay)
            delay = min(every, delay * 2)

    def result(self, timeout: float | None = None):
        """The rows as a DataFrame (waits for the job first)."""
        import pandas as pd

        info = self.wait(timeout)
        r = send("GET", v1(f"query/jobs/{self.id}/result"), client=self._client, params={"format": "csv"})
        if not info["columns"]:
            return pd.DataFrame()
        frame = pd.read_csv(io.BytesIO(r.content), keep_default_na=False, na_values=[""])
        frame.attrs["truncated"] = bool(info["truncated"])
        return frame

    def cancel(self) -> None:
        """Stop it (if still running) and delete it and its result."""
        send("DELETE", v1(f"query/jobs/{self.id}"), client=self._client)


def query_async(sql: str, *, limit: int | None = None, offset: int = 0, client: Client | None = None) -> Job:
    """Start a query in the background, with larger row and time limits than ``query``; a ``Job``."""
    body: dict = {"sql": sql, "offset": offset}
    if limit is not None:
        body["limit"] = limit
    return Job(send("POST", v1("query"), client=client, params={"async": "true"}, json=body).json(), client)


def jobs(*, client: Client | None = None) -> list[Job]:
    """Your asynchronous queries, latest first."""
    return [Job(info, client) for info in get_json(v1("query/jobs"), client=client)]
