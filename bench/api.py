"""How fast the alert data API answers, beside the same query with bare pymysql.

Over a scratch alert database ``alertlab_bench_<hex>`` holding --objects
synthetic rows of ``objects`` (``ingest.synthetic.bulk_object_rows``, loaded
with multi-row INSERTs) and --lightcurves objects with 40 detections and 20
upper limits each, it serves the real `alertlab` service behind a real hub
(proxy included) and times, sequentially, one request at a time:

- cone search: ``GET cone?ra&dec&radius=10`` around random objects
  (target p50 <= 20 ms);
- an object with its light curve: ``GET objects/{id}`` (target <= 30 ms);
- an indexed query on objects: ``POST query`` with
  ``SELECT objectId, ra, decl, latest_mag FROM objects WHERE latest_mag BETWEEN x AND x + 0.0005``
  (``ix_objects_latest_mag``; target <= 100 ms);

each beside the same SQL run with bare pymysql on the read-only account in
the same run (for the cone, with the same HEALPix ranges and exact distance
test), and prints p50/p95 and the API's overhead as a ratio of the p50s. The
caller is a hub admin (a power user: 3,000 requests a minute).

Everything runs in a temporary ALERTLAB_HOME with a private MariaDB and hub
on free ports, removed at the end.

    .venv/bin/python bench/api.py [--objects 1000000] [--lightcurves 2000] [--repeat 300]
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
import statistics
import tempfile
import time
import uuid


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def load_objects(n: int, chunk: int = 5000) -> None:
    from alertlab.core import db
    from alertlab.ingest.synthetic import bulk_object_rows

    raw = db.engine("alerts").raw_connection()
    try:
        cur = raw.cursor()
        cols = None
        batch = []
        started = time.monotonic()
        for i, row in enumerate(bulk_object_rows(n, seed=20261128)):
            if cols is None:
                cols = list(row)
                sql = (f"INSERT INTO objects ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})")
            batch.append(tuple(row[c] for c in cols))
            if len(batch) == chunk:
                cur.executemany(sql, batch)  # pymysql folds these into multi-row INSERTs
                raw.commit()
                batch = []
            if (i + 1) % 200_000 == 0:
                print(f"  {i + 1:,} objects loaded ({time.monotonic() - started:.0f} s)", flush=True)
        if batch:
            cur.executemany(sql, batch)
            raw.commit()
    finally:
        raw.close()


def load_lightcurves(object_ids: list[str]) -> None:
    import numpy as np

    from alertlab.core import db

    rng = np.random.default_rng(5)
    det, nondet = [], []
    for k, oid in enumerate(object_ids):
        mjd = 60000 + np.sort(rng.uniform(0, 300, 60))
        for j in range(40):
            det.append((10**15 + k * 100 + j, oid, "ztf", float(mjd[j]), "gr"[j % 2], float(rng.uniform(17, 20)),
                        0.05, 1000.0, 20.0, 1, 0.9, '{"field": 600}'))
        for j in range(40, 60):
            nondet.append((oid, float(mjd[j]), "gr"[j % 2], 20.5))
    raw = db.engine("alerts").raw_connection()
    try:
        cur = raw.cursor()
        cur.executemany("INSERT INTO detections (detectionId, objectId, survey, mjd, band, mag, magerr, flux, fluxerr, "
                        "isdiffpos, reliability, extra) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", det)
        cur.executemany("INSERT INTO nondetections (objectId, mjd, band, diffmaglim) VALUES (%s,%s,%s,%s)", nondet)
        raw.commit()
    finally:
        raw.close()


def timed(fn, repeat: int) -> list[float]:
    out = []
    for i in range(repeat):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--lightcurves", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="alertlab-bench-api-")
    os.environ["ALERTLAB_HOME"] = home
    os.environ["ALERTLAB_ALERTS_DB"] = f"alertlab_bench_{uuid.uuid4().hex[:8]}"
    for name in ("ALERTLAB_DB_URL", "ALERTLAB_DB_READER_URL", "ALERTLAB_KAFKA", "ALERTLAB_API_PORT"):
        os.environ.pop(name, None)  # private servers: the read-only account is granted the scratch database
    from alertlab.core import db, migrations
    from alertlab.core.services import mariadb
    from alertlab.core.services.process import free_port

    os.environ["ALERTLAB_HUB_PORT"] = str(free_port())
    os.environ["ALERTLAB_HUB_ADMINS"] = "benchadmin"
    os.environ["ALERTLAB_IDLE_TIMEOUT"] = "0"
    try:
        mariadb.up()
        for database in migrations.DATABASES:
            migrations.upgrade(database)
        print(f"loading {args.objects:,} objects into {os.environ['ALERTLAB_ALERTS_DB']} ...", flush=True)
        t = time.monotonic()
        load_objects(args.objects)
        print(f"  done in {time.monotonic() - t:.0f} s", flush=True)
        with db.engine("alerts").connect() as conn:
            conn.exec_driver_sql("ANALYZE TABLE objects")
            sample = conn.exec_driver_sql("SELECT objectId, ra, decl, latest_mag FROM objects ORDER BY RAND(7) "
                                          f"LIMIT {max(args.repeat, args.lightcurves)}").all()
        lc_ids = [r[0] for r in sample[:args.lightcurves]]
        load_lightcurves(lc_ids)
        bench(sample, lc_ids, args.repeat)
    finally:
        try:
            from alertlab.hub import control

            control.down()
        except Exception as exc:  # noqa: BLE001 - not started, or already down
            print(f"(hub: {exc})")
        db.dispose_all()
        mariadb.down()
        shutil.rmtree(home, ignore_errors=True)


def bench(sample, lc_ids, repeat: int) -> None:
    import httpx
    import numpy as np

    from alertlab.api import cone as cone_mod
    from alertlab.api.routes.objects import DETECTION_COLUMNS
    from alertlab.core import db
    from alertlab.hub import accounts, control
    from alertlab.hub.hubapi import HubAPI

    print("starting the hub and the alertlab service ...", flush=True)
    info = control.up()
    api = HubAPI()
    accounts.ensure_user("benchadmin", secrets.token_urlsafe(12), email="bench@example.org", admin=True, api=api)
    token = api.new_token("benchadmin", note="bench")
    api.close()
    base = info["url"] + "services/alertlab/api/v1/"
    http = httpx.Client(headers={"Authorization": f"token {token}"}, timeout=60)
    for _ in range(120):
        try:
            if http.get(base + "whoami").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    url = db.url("alerts", reader=True)
    import pymysql

    bare = pymysql.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                           database=url.database, autocommit=True)
    cur = bare.cursor()

    def pick(i):
        return sample[i % len(sample)]

    # -- cone: 10" around random objects --
    def api_cone(i):
        oid, ra, dec, _ = pick(i)
        r = http.get(base + "cone", params={"ra": ra, "dec": dec, "radius": 10})
        assert r.status_code == 200 and r.json()["count"] >= 1, r.text

    def bare_cone(i):
        oid, ra, dec, _ = pick(i)

        def fetch(sql, params):
            cur.execute(sql, params)
            return cur.fetchall()

        rows, _ = cone_mod.search(fetch, ra, dec, 10.0, ["objectId", "survey", "ra", "decl", "ndet", "firstmjd",
                                                        "lastmjd", "latest_mag", "latest_band"])
        assert rows

    # -- object with its light curve --
    def api_object(i):
        r = http.get(base + f"objects/{lc_ids[i % len(lc_ids)]}")
        assert r.status_code == 200 and len(r.json()["detections"]) == 40, r.text[:200]

    def bare_object(i):
        oid = lc_ids[i % len(lc_ids)]
        for sql in ["SELECT * FROM objects WHERE objectId = %s",
                    f"SELECT {', '.join(DETECTION_COLUMNS)} FROM detections WHERE objectId = %s ORDER BY mjd",
                    "SELECT mjd, band, diffmaglim FROM nondetections WHERE objectId = %s ORDER BY mjd",
                    "SELECT mjd, band, flux, fluxerr, extra FROM forced_photometry WHERE objectId = %s ORDER BY mjd",
                    "SELECT annotator, classification FROM annotations WHERE objectId = %s",
                    "SELECT watchlist_id FROM watchlist_hits WHERE objectId = %s",
                    "SELECT area_id FROM area_hits WHERE objectId = %s"]:
            cur.execute(sql, (oid,))
            cur.fetchall()

    # -- an indexed query on objects --
    def sql_of(i):
        low = math.floor(float(pick(i)[3]) * 1e4) / 1e4  # the picked object is in the range
        return (f"SELECT objectId, ra, decl, latest_mag FROM objects "
                f"WHERE latest_mag BETWEEN {low:.4f} AND {low + 0.0005:.4f}")

    def api_query(i):
        r = http.post(base + "query", json={"sql": sql_of(i), "limit": 1000})
        assert r.status_code == 200 and r.json()["rows"], r.text[:200]

    def bare_query(i):
        cur.execute(sql_of(i))
        assert cur.fetchall()

    results = []
    for label, target, api_fn, bare_fn in [("cone search, 10\"", 20, api_cone, bare_cone),
                                           ("object + light curve", 30, api_object, bare_object),
                                           ("indexed query on objects", 100, api_query, bare_query)]:
        timed(api_fn, 20)  # warm caches (hub token cache, pools, InnoDB pages)
        timed(bare_fn, 20)
        a = timed(api_fn, repeat)
        b = timed(bare_fn, repeat)
        results.append((label, target, a, b))
    bare.close()
    http.close()
    with db.engine("alerts").connect() as conn:
        n = conn.exec_driver_sql("SELECT COUNT(*) FROM objects").scalar()
    print(f"\nalert data API over {n:,} objects ({repeat} sequential requests each, through the hub's proxy):")
    print(f"{'':28} {'API p50':>9} {'p95':>8} {'pymysql p50':>12} {'p95':>8} {'overhead':>9}  target")
    for label, target, a, b in results:
        a50, b50 = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        verdict = "ok" if a50 <= target else "MISSED"
        print(f"{label:28} {a50:7.1f}ms {percentile(a, 95) * 1e3:6.1f}ms {b50:10.2f}ms "
              f"{percentile(b, 95) * 1e3:6.2f}ms {a50 / b50:8.1f}x  p50 <= {target} ms: {verdict}")


if __name__ == "__main__":
    main()
