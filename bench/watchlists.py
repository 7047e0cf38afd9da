"""How long watchlist matching takes per ingest batch with a million cones.

Prints, for 1,000,000 cones over the whole sky (2" radii, then radii spread
from 0.5" to 3600"): the time to build the index, the median time to match a
batch of 500 alerts, and the median time of the brute-force baseline (every
alert against every cone, measured on a few alerts and scaled to the batch),
with their ratio. With ``--db`` it also times ``insert_cones`` and
``load_cone_index`` against the configured alert database (``eval "$(alertlab
services up)"; alertlab db init`` first); the watchlist it creates (owner
``bench-watchlists``) is deleted afterwards.

    .venv/bin/python bench/watchlists.py [--cones 1000000] [--batch 500] [--repeat 21] [--db]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from alertlab.ingest.watchlists import ConeIndex, insert_cones, load_cone_index, separation_arcsec

OWNER = "bench-watchlists"


def sky(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def bench_index(label, ra, dec, radius, batch, repeat, rng):
    n = len(ra)
    started = time.perf_counter()
    index = ConeIndex.build(np.ones(n, dtype=np.int64), np.arange(n), ra, dec, radius)
    build = time.perf_counter() - started
    # half the alerts near cones (so that there are hits), half anywhere
    near = rng.choice(n, batch // 2, replace=False)
    a_ra = np.r_[ra[near] + rng.normal(0, 1e-4, len(near)), sky(rng, batch - len(near))[0]]
    a_dec = np.r_[np.clip(dec[near] + rng.normal(0, 1e-4, len(near)), -90, 90), sky(rng, batch - len(near))[1]]
    match, hits = timed(lambda: index.match(a_ra, a_dec), repeat)
    sample = 5
    brute, _ = timed(lambda: [np.flatnonzero(separation_arcsec(a_ra[i], a_dec[i], ra, dec) <= radius)
                              for i in range(sample)], max(3, repeat // 5))
    brute_batch = brute / sample * batch
    print(f"{label}: build {build:.2f} s; batch of {batch}: match {match * 1e3:.2f} ms ({len(hits)} hits), "
          f"brute force {brute_batch:.1f} s (from {sample} alerts), ratio {brute_batch / match:,.0f}x")


def bench_db(ra, dec, radius):
    from alertlab.core import db

    engine = db.engine("alerts")
    names = [f"bench {i}" for i in range(len(ra))]
    try:
        with engine.begin() as conn:
            wl = conn.exec_driver_sql("INSERT INTO watchlists (owner, name) VALUES (%s, 'bench')", (OWNER,)).lastrowid
            started = time.perf_counter()
            insert_cones(conn, wl, ra, dec, radius, names)
            print(f"insert_cones: {len(ra):,} cones with names in {time.perf_counter() - started:.1f} s")
        with engine.connect() as conn:
            started = time.perf_counter()
            index = load_cone_index(conn)
            print(f"load_cone_index: {len(index):,} cones (all active watchlists) in "
                  f"{time.perf_counter() - started:.1f} s")
    finally:
        with engine.begin() as conn:
            for wl in conn.exec_driver_sql("SELECT id FROM watchlists WHERE owner = %s", (OWNER,)).scalars().all():
                conn.exec_driver_sql("DELETE FROM watchlist_cones WHERE watchlist_id = %s", (wl,))
            conn.exec_driver_sql("DELETE FROM watchlists WHERE owner = %s", (OWNER,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cones", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--db", action="store_true", help="also time insert_cones and load_cone_index")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    ra, dec = sky(rng, args.cones)
    bench_index('2" cones', ra, dec, np.full(args.cones, 2.0), args.batch, args.repeat, rng)
    mixed = np.exp2(rng.uniform(-1, np.log2(3600), args.cones))
    bench_index('0.5"-3600" cones', ra, dec, mixed, args.batch, args.repeat, rng)
    if args.db:
        bench_db(ra, dec, np.full(args.cones, 2.0))


if __name__ == "__main__":
    main()
