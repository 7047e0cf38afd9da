"""Writes one batch of alerts to the alert database in one transaction.

Idempotent by construction: detections, non-detections, forced photometry,
cutouts and hits are keyed and inserted once (INSERT IGNORE; detections in one
key-ordered INSERT ... ON DUPLICATE KEY UPDATE where only an alert's own
detection changes a stored row, see DETECTIONS); object rows are recomputed
from *all* stored detections of the touched objects, so a redelivery or a replay
changes nothing and arrival order does not matter.

A batch is two transactions: the keyed rows (detections, history, hits,
cutouts) first, then the objects it touched, recomputed while their rows are
locked. Only the second serialises concurrent ingest processes, and only on
the objects they share; a crash between the two leaves objects to be
recomputed when the batch is replayed (its Kafka offsets are not committed).

An alert's detection carries ``published``: 0 until its match events have gone
out to Kafka. A redelivered alert whose events were published is not matched
again; one whose batch crashed between the database commit and the events is."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import orjson
import pymysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from alertlab.api.readonly import unavailable
from alertlab.core import db
from alertlab.ingest import cutouts as cutout_store
from alertlab.ingest import sql_values
from alertlab.ingest.features import BANDS, EMA_TAUS, object_features, sky_columns
from alertlab.ingest.rows import AlertRows, extra_json

DET_COLS = ["detectionId", "objectId", "survey", "mjd", "band", "mag", "magerr", "flux", "fluxerr", "ra", "decl",
            "isdiffpos", "reliability", "has_alert", "extra"]
BAND_FEATURES = ["ndet", "mean", "median", "std", "min", "max", "latest", "rate", *EMA_TAUS]
OBJ_COLS = (["objectId", "survey", "ra", "decl", "healpix", "glat", "glon", "ndet", "firstmjd", "lastmjd",
             "latest_mag", "latest_band", "latest_detectionId", "latest_reliability", "g_minus_r", "g_minus_r_dt",
             "nnondet", "sgscore1", "distpsnr1", "ssdistnr"]
            + [f"{b}_{f}" for b in BANDS for f in BAND_FEATURES])
SURVEY_EXTRA = {"sgscore1", "distpsnr1", "ssdistnr"}


# (head, tail) of the batch INSERTs, whose rows are written as literals by ``sql_values``
# An alert's own detection (has_alert=1) is the authority on its measurements: a copy of the same detectionId in
# another alert's history may differ (42 of the 4,488 candids in the shared ZTF alerts have two jd), and which
# arrived first must not decide what is stored. A history copy (has_alert=0) of a stored row changes nothing.
# Own and history rows go in one statement, in key order: as two statements, two ingest processes each held
# locks on their own rows while waiting for the other's as history, and deadlocked (about 4 times a paced run).
_OWN = "VALUES(has_alert)=1"
DETECTIONS = (f"INSERT INTO detections ({','.join(DET_COLS)}) VALUES",
              f"ON DUPLICATE KEY UPDATE has_alert=IF({_OWN}, 1, has_alert), extra=IF({_OWN}, VALUES(extra), extra), "
              + "".join(f"{c}=IF({_OWN}, VALUES({c}), {c}), " for c in ("mjd", "band", "mag", "magerr", "flux",
                                                                        "fluxerr", "ra", "decl", "isdiffpos"))
              + f"reliability=IF({_OWN}, COALESCE(VALUES(reliability), reliability), reliability)")
NONDET = ("INSERT IGNORE INTO nondetections (objectId, mjd, band, diffmaglim) VALUES", "")
FORCED = ("INSERT IGNORE INTO forced_photometry (objectId, mjd, band, flux, fluxerr, extra) VALUES", "")
_updates = ["updated=IF(ndet<=>VALUES(ndet) AND lastmjd<=>VALUES(lastmjd), updated, CURRENT_TIMESTAMP(6))"]
_updates += [f"`{c}`=COALESCE(VALUES(`{c}`), `{c}`)" if c in SURVEY_EXTRA else f"`{c}`=VALUES(`{c}`)"
             for c in OBJ_COLS[1:]]
OBJECT = (f"INSERT INTO objects ({','.join(f'`{c}`' for c in OBJ_COLS)}) VALUES",
          f"ON DUPLICATE KEY UPDATE {', '.join(_updates)}")
SQL_WL_HIT = ("INSERT IGNORE INTO watchlist_hits (watchlist_id, cone_id, objectId, detectionId, name, arcsec, mjd) "
              "VALUES (%s,%s,%s,%s,%s,%s,%s)")
SQL_AREA_HIT = "INSERT IGNORE INTO area_hits (area_id, objectId, detectionId, mjd) VALUES (%s,%s,%s,%s)"
SQL_REJECT = ("INSERT IGNORE INTO ingest_rejects (reason, topic, kafka_partition, kafka_offset, source, first_bytes, size)"
              " VALUES (%s,%s,%s,%s,%s,%s,%s)")


_LOCK_CONFLICT = {1213, 1205}  # a deadlock or lock wait timeout between two ingest processes


@dataclass
class Reject:
    reason: str
    data: bytes
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    source: str | None = None


@dataclass
class BatchResult:
    alerts: list[AlertRows]                     # alerts new to the database or not yet published
    objects: list[dict]                         # recomputed rows of every object the batch touched
    watchlist_hits: list[dict] = field(default_factory=list)
    area_hits: list[dict] = field(default_factory=list)
    rows: int = 0                               # rows sent to the database
    seconds: float = 0.0


def _in_list(values) -> str:
    return ",".join(["%s"] * len(values))


class Store:
    """The batch writer. ``watchlists``/``areas`` are matchers with ``match(ra, dec)`` (or None)."""

    def __init__(self, engine: Engine, watchlists=None, areas=None):
        # READ COMMITTED: features are computed from every committed detection, including those another
        # ingest process (same consumer group, other partition) stored after this transaction began.
        # Set once per pooled connection (an engine of its own), not per transaction: an execution option
        # would cost two more statements in each of a batch's transactions.
        # group_concat_max_len bounds JSON_ARRAYAGG: an object's whole light curve must fit (1 MB by default)
        # pool_pre_ping, pool_reset_on_return: no ping before each checkout, no ROLLBACK after each checkin (the
        # defaults). A batch runs four transactions here, so they were eight more round trips, each waking MariaDB
        # and then waiting for the GIL again. Every transaction here ends in its own COMMIT or ROLLBACK, and one
        # whose connection the server closed (a restart, wait_timeout, KILL) runs again on a new one (``retrying``).
        self.engine = db.engine_like(engine, isolation_level="READ COMMITTED",
                                     connect_args={"init_command": "SET SESSION group_concat_max_len = 1073741824"},
                                     pool_pre_ping=False, pool_reset_on_return=None)
        self.watchlists = watchlists
        self.areas = areas
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cutouts")

    def warm(self) -> None:
        """Open now the three connections the Kafka ingest uses at once (the commit thread's, the cutout
        thread's, and the publish thread's for ``mark_published``), not while the first batch waits: its cutout
        step took 0.29 s for 26 alerts; warmed, 0.06-0.13 s for 78 to 332."""
        with self.engine.connect(), self.engine.connect(), self.engine.connect():
            pass

    def write(self, alerts: list[AlertRows], rejects: list[Reject] = ()) -> BatchResult:
        """Write the batch (see the module docstring for its two transactions)."""
        started = time.monotonic()
        unique: dict[int, AlertRows] = {}
        for a in alerts:
            unique[a.detectionId] = a  # the last copy wins, as when processed one by one
        alerts = list(unique.values())
        result = retrying(lambda: self._write_rows(alerts, rejects), self.engine)
        if alerts:
            # of two batches touching one object, the one that locks it second sees both batches' detections
            result.objects = retrying(lambda: self._write_objects(alerts), self.engine)
            result.rows += len(result.objects)
        result.seconds = time.monotonic() - started
        return result

    def _write_rows(self, alerts: list[AlertRows], rejects: list[Reject]) -> BatchResult:
        """Keyed rows, without object locks, so two ingest processes write theirs side by side."""
        result = BatchResult(alerts=[], objects=[])
        # Cutouts (most of the bytes) are stored in parallel with the transaction (see ingest/cutouts.py):
        # keyed and written once, so a crash between the two loses and doubles nothing.
        cutouts = self._pool.submit(self._insert_cutouts, alerts) if alerts else None
        with self.engine.begin() as conn:
            if alerts:
                published = self._stored(conn, alerts)
                result.alerts = [a for a in alerts if published.get(a.detectionId) != 1]
                result.rows += self._insert_rows(conn, alerts, published)
                self._match_sky(conn, result)
            if rejects:
                conn.exec_driver_sql(SQL_REJECT, [
                    (r.reason[:2000], r.topic, r.partition, r.offset, r.source, r.data[:64], len(r.data))
                    for r in rejects])
            if cutouts is not None:
                result.rows += cutouts.result()  # detections become visible only with their cutouts stored
        return result

    def _write_objects(self, alerts: list[AlertRows]) -> list[dict]:
        """The touched objects, recomputed under their row locks from every committed detection."""
        with self.engine.begin() as conn:
            stored_extra = self._lock_objects(conn, alerts)
            return self._recompute_objects(conn, alerts, stored_extra)

    def mark_published(self, detection_ids: list[int]) -> None:
        if not detection_ids:
            return
        ids = tuple(sorted(detection_ids))  # rows locked in key order, like another process's batch

        def mark():
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"UPDATE detections SET published=1 WHERE detectionId IN ({_in_list(ids)})",
                                     ids)

        retrying(mark, self.engine)

    # -- steps ---------------------------------------------------------------------------------------------
    def _lock_objects(self, conn: Connection, alerts: list[AlertRows]) -> dict[str, dict]:
        """Serialise concurrent batches touching the same objects: lock their rows (in a fixed order, so two
        ingest processes cannot deadlock), creating a placeholder row for new objects first. Returns the
        stored survey fields (SURVEY_EXTRA) of the objects that exist."""
        first = {}
        for a in sorted(alerts, key=lambda a: a.objectId):
            first.setdefault(a.objectId, a)
        ids = list(first)
        extra = sorted(SURVEY_EXTRA)
        existing = {r[0]: dict(zip(extra, r[1:])) for r in conn.exec_driver_sql(
            f"SELECT objectId, {', '.join(extra)} FROM objects WHERE objectId IN ({_in_list(ids)}) "
            "ORDER BY objectId FOR UPDATE", tuple(ids))}
        new = [(oid, a.survey, a.ra or 0.0, a.decl or 0.0, 0, 0) for oid, a in first.items() if oid not in existing]
        if new:  # placeholders only: pymysql then sends one multi-row INSERT, not one statement per object
            conn.exec_driver_sql("INSERT IGNORE INTO objects (objectId, survey, ra, decl, healpix, ndet) "
                                 "VALUES (%s,%s,%s,%s,%s,%s)", new)
        return existing

    def _stored(self, conn: Connection, alerts: list[AlertRows]) -> dict[int, int]:
        """Which of the batch's detections (the alerts' own and their history) are stored: detectionId ->
        published. One query for both questions: which alerts still need their events, and which history
        is new."""
        ids = sorted({a.detectionId for a in alerts} | {h.detectionId for a in alerts for h in a.history})
        # one JSON array, not a row per stored detection (~10 per alert): pymysql's parsing of those rows cost
        # 0.05 ms of CPU per alert, the array 0.02 (ids are integers, exact in JSON)
        found = conn.exec_driver_sql(
            "SELECT JSON_ARRAYAGG(JSON_ARRAY(detectionId, published)) FROM detections "
            f"WHERE detectionId IN ({_in_list(ids)})", tuple(ids)).scalar()
        return dict(orjson.loads(found)) if found else {}

    def _insert_rows(self, conn: Connection, alerts: list[AlertRows], stored: dict[int, int]) -> int:
        # one statement in key order (see DETECTIONS): own detections, and history not stored yet (most is: each
        # alert repeats 30 days of it), built only now; an id both own and history in this batch is the alert's
        rows = {a.detectionId: a.detection for a in alerts}
        for a in alerts:
            for h in a.history:
                if h.detectionId not in stored and h.detectionId not in rows:
                    rows[h.detectionId] = h.row()
        nondet = {(n["objectId"], n["mjd"], n["band"]): n["diffmaglim"] for a in alerts for n in a.nondetections}
        forced = {(f["objectId"], f["mjd"], f["band"]): (f["flux"], f["fluxerr"], f["extra"])
                  for a in alerts for f in a.forced}
        _drop_stored(conn, "nondetections", nondet)
        _drop_stored(conn, "forced_photometry", forced)
        nondet, forced = dict(sorted(nondet.items())), dict(sorted(forced.items()))
        sql_values.insert(conn, DETECTIONS[0], [_det_tuple(r) for _, r in sorted(rows.items())], DETECTIONS[1])
        if nondet:
            sql_values.insert(conn, NONDET[0], [(*k, v) for k, v in nondet.items()])
        if forced:
            sql_values.insert(conn, FORCED[0], [(*k, *v) for k, v in forced.items()])
        return len(rows) + len(nondet) + len(forced)

    def _insert_cutouts(self, alerts: list[AlertRows]) -> int:
        return cutout_store.write(self.engine, [c for a in alerts for c in a.cutouts])

    def _recompute_objects(self, conn: Connection, alerts: list[AlertRows],
                           stored_extra: dict[str, dict]) -> list[dict]:
        latest: dict[str, AlertRows] = {}
        for a in alerts:
            if a.objectId not in latest or a.mjd > latest[a.objectId].mjd:
                latest[a.objectId] = a
        ids = list(latest)
        # one row per object, its detections as one JSON array: parsing ~20 rows per object in pymysql
        # (pure Python) cost more than the features; MariaDB's JSON keeps every double exact
        by_obj: dict[str, list] = {oid: orjson.loads(rows) for oid, rows in conn.exec_driver_sql(
            "SELECT objectId, JSON_ARRAYAGG(JSON_ARRAY(detectionId, mjd, band, mag, ra, decl, reliability)) "
            f"FROM detections WHERE objectId IN ({_in_list(ids)}) GROUP BY objectId", tuple(ids))}
        nnondet = dict(conn.exec_driver_sql(
            f"SELECT objectId, COUNT(*) FROM nondetections WHERE objectId IN ({_in_list(ids)}) GROUP BY objectId",
            tuple(ids)).fetchall())
        objects = []
        for oid in ids:
            rows = by_obj.get(oid)
            if not rows:  # its detection ids already belong to another object: leave no placeholder behind
                conn.exec_driver_sql("DELETE FROM objects WHERE objectId=%s AND ndet=0", (oid,))
                continue
            arr = list(zip(*rows))
            feats = object_features({"detectionId": arr[0], "mjd": arr[1], "band": arr[2], "mag": arr[3],
                                     "ra": arr[4], "decl": arr[5], "reliability": arr[6]})
            a = latest[oid]
            if feats["ra"] is None:
                feats["ra"], feats["decl"] = a.ra, a.decl
            feats.update(objectId=oid, survey=a.survey, nnondet=int(nnondet.get(oid, 0)))
            # the survey's object fields come from the object's newest alert: an older alert (a replay, a late
            # redelivery) keeps the stored ones, so batch boundaries do not matter (filters see the same values)
            newest = a.mjd is not None and (feats["lastmjd"] is None or a.mjd >= feats["lastmjd"])
            source = a.object_extra if newest else stored_extra.get(oid, {})
            for k in SURVEY_EXTRA:
                feats[k] = source.get(k)
            objects.append(feats)
        if not objects:
            return objects
        sky = sky_columns(np.array([o["ra"] for o in objects]), np.array([o["decl"] for o in objects]))
        for i, o in enumerate(objects):
            o["healpix"] = int(sky["healpix"][i])
            o["glat"] = float(sky["glat"][i])
            o["glon"] = float(sky["glon"][i])
        sql_values.insert(conn, OBJECT[0], [[o.get(c) for c in OBJ_COLS] for o in objects], OBJECT[1])
        return objects

    def _match_sky(self, conn: Connection, result: BatchResult) -> None:
        alerts = [a for a in result.alerts if a.ra is not None and a.decl is not None]
        if not alerts or (self.watchlists is None and self.areas is None):
            return
        ra = np.array([a.ra for a in alerts], dtype=float)
        dec = np.array([a.decl for a in alerts], dtype=float)
        if self.watchlists is not None:
            for hit in self.watchlists.match(ra, dec):
                a = alerts[hit.alert_index]
                result.watchlist_hits.append({
                    "watchlist_id": int(hit.watchlist_id), "cone_id": int(hit.cone_id), "objectId": a.objectId,
                    "detectionId": a.detectionId, "name": hit.name, "arcsec": float(hit.arcsec), "mjd": a.mjd})
        if self.areas is not None:
            for hit in self.areas.match(ra, dec):
                a = alerts[hit.alert_index]
                result.area_hits.append({"area_id": int(hit.area_id), "objectId": a.objectId,
                                         "detectionId": a.detectionId, "mjd": a.mjd})
        if result.watchlist_hits:
            conn.exec_driver_sql(SQL_WL_HIT, [
                (h["watchlist_id"], h["cone_id"], h["objectId"], h["detectionId"], h["name"], h["arcsec"], h["mjd"])
                for h in result.watchlist_hits])
        if result.area_hits:
            conn.exec_driver_sql(SQL_AREA_HIT, [
                (h["area_id"], h["objectId"], h["detectionId"], h["mjd"]) for h in result.area_hits])
        result.rows += len(result.watchlist_hits) + len(result.area_hits)


def retrying(transaction, engine: Engine | None = None):
    """Run ``transaction`` (a function doing one whole transaction) again after an error of the server or the
    connection, not of its SQL (``unavailable``): a deadlock or lock wait timeout with a concurrent ingest
    process, or a lost connection. A lost connection means the others in ``engine``'s pool are likely gone too
    (a server restart): they are closed, and the retry opens a new one. Running a transaction again is safe:
    every write of a batch is keyed (see the module docstring)."""
    for attempt in range(8):
        try:
            return transaction()
        except (DBAPIError, pymysql.err.MySQLError) as exc:  # sql_values runs pymysql directly
            orig = getattr(exc, "orig", None) or exc
            code = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
            if code is None or not unavailable(code) or attempt == 7:  # a fault of the batch's SQL: no retry
                raise
            if code not in _LOCK_CONFLICT and engine is not None:
                engine.dispose()
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _drop_stored(conn: Connection, table: str, rows: dict) -> None:
    """Remove from ``rows`` (keyed (objectId, mjd, band)) those ``table`` already holds.

    Every ZTF alert repeats its object's upper limits of the last 30 days (~15 in a typical alert): writing
    them all again as INSERT IGNORE literals cost the ingest more than reading the stored keys, one JSON array
    per object (MariaDB's work is about the same either way). A key read back inexactly is only sent again,
    and ignored."""
    if not rows:
        return
    ids = sorted({k[0] for k in rows})
    for oid, keys in conn.exec_driver_sql(
            f"SELECT objectId, JSON_ARRAYAGG(JSON_ARRAY(mjd, band)) FROM {table} "
            f"WHERE objectId IN ({_in_list(ids)}) GROUP BY objectId", tuple(ids)):
        for mjd, band in orjson.loads(keys):
            rows.pop((oid, mjd, band), None)


def _det_tuple(d: dict) -> tuple:
    return tuple(extra_json(d[c]) if c == "extra" else d[c] for c in DET_COLS)
