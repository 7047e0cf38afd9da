"""How long evaluating user filters takes per ingest batch.

Prints the median time of ``FilterEvaluator.evaluate`` for 100 and 1,000
active filters on a batch of 500 objects, and its ratio to the bare time of
one single-filter query on the same batch. Needs a running, migrated
database (``eval "$(alertlab services up)"; alertlab db init``); the filters
it creates (owner ``bench-filters``) are deleted afterwards, and it touches
no other filter: run it on a database without other active filters for
clean figures.

    .venv/bin/python bench/filters.py [--batch 500] [--repeat 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import sqlalchemy as sa

from alertlab.core import db
from alertlab.ingest.filters import FilterEvaluator

OWNER = "bench-filters"

# A mix of typical filters: cuts on features, colours, host association,
# annotations by a classifier. --permissive loosens the cuts so that each
# object matches hundreds of filters (a stress case: most time then goes
# into returning and building the matches).
TEMPLATES = [
    "g_ndet >= {a} AND latest_mag < {m}",
    "r_rate > {x} AND ndet BETWEEN 2 AND 50",
    "ABS(glat) > {b} AND g_minus_r < {y} AND survey = 'ZTF'",
    "latest_reliability > {x} AND (sgscore1 IS NULL OR sgscore1 < {s}) AND distpsnr1 > 2",
    "objectId IN (SELECT objectId FROM annotations WHERE annotator = 'bench{a}' AND classification = 'SN')",
    "lastmjd - firstmjd < {d} AND POW(10, -0.4 * latest_mag) > 1e-8 AND r_ema8 - r_ema28 < -{z}",
]
# each filter matches about 1% of the objects
SELECTIVE = dict(a=(25, 29), m=(14.2, 15.0), x=(0.95, 0.99), b=(80, 88), y=(-0.9, -0.7), s=(0.02, 0.08),
                 d=(2, 9), z=(1.0, 1.5))
# each object matches hundreds of filters
PERMISSIVE = dict(a=(1, 9), m=(15.0, 20.0), x=(0.0, 1.0), b=(1, 9), y=(0.0, 1.0), s=(0.3, 0.6),
                  d=(20, 90), z=(0.0, 0.5))


def object_rows(n: int, columns: list[str], rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        row = {c: None for c in columns}
        row.update({c: rng.uniform(-1, 1) for c in columns if c.endswith(("_rate", "_ema2", "_ema8", "_ema28"))})
        row.update({c: rng.randint(0, 30) for c in columns if c.endswith("_ndet")})
        row.update({
            "objectId": f"BENCH{i:07d}", "survey": "ZTF", "ra": rng.uniform(0, 360), "decl": rng.uniform(-30, 90),
            "healpix": rng.randint(0, 10**9), "glat": rng.uniform(-90, 90), "glon": rng.uniform(0, 360),
            "ndet": rng.randint(1, 60), "firstmjd": 60000 + rng.uniform(0, 100), "lastmjd": 60100 + rng.uniform(0, 5),
            "latest_mag": rng.uniform(14, 21), "latest_band": "g", "latest_reliability": rng.random(),
            "g_minus_r": rng.uniform(-1, 2), "nnondet": rng.randint(0, 10), "sgscore1": rng.random(),
            "distpsnr1": rng.uniform(0, 20), "ssdistnr": None,
        })
        rows.append(row)
    return rows


def filters(n: int, rng: random.Random, cuts: dict = SELECTIVE) -> list[str]:
    def draw(lo, hi):
        return rng.randint(lo, hi) if isinstance(lo, int) else round(rng.uniform(lo, hi), 2)

    return [rng.choice(TEMPLATES).format(**{k: draw(*v) for k, v in cuts.items()}) for _ in range(n)]


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--permissive", action="store_true", help="loose cuts: hundreds of matches per object")
    args = parser.parse_args()
    rng = random.Random(42)
    engine = db.engine("alerts")
    with engine.connect() as conn:
        columns = [r[0] for r in conn.exec_driver_sql(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'objects' ORDER BY ORDINAL_POSITION")]
    rows = object_rows(args.batch, columns, rng)
    wheres = filters(1000, rng, PERMISSIVE if args.permissive else SELECTIVE)
    try:
        for n in (1, 100, 1000):
            with engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM filters WHERE owner = %s", (OWNER,))
                conn.execute(sa.text("INSERT INTO filters (owner, name, where_sql) VALUES (:o, :n, :w)"),
                             [{"o": OWNER, "n": f"bench {i}", "w": w} for i, w in enumerate(wheres[:n])])
            evaluator = FilterEvaluator(engine, refresh_seconds=3600)
            try:
                nmatches = len(evaluator.evaluate(rows))
                seconds = median_seconds(lambda: evaluator.evaluate(rows), args.repeat)
                if n == 1:
                    evaluator.evaluate(rows)
                    single = median_seconds(lambda: _bare_query(evaluator, wheres[0]), args.repeat)
                    print(f"batch of {args.batch} objects; bare single-filter query: {single * 1000:.2f} ms "
                          "(the first filter alone, on the already filled batch)")
                print(f"{n:>4} filter(s): evaluate {seconds * 1000:8.2f} ms  ({seconds / single:7.1f} x bare)  "
                      f"{nmatches} matches")
                if n == 1000:
                    naive = median_seconds(lambda: [_bare_query(evaluator, w) for w in wheres], 3)
                    print(f"     for comparison, one query per filter on the filled batch: {naive * 1000:8.2f} ms")
            finally:
                evaluator.close()
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM filters WHERE owner = %s", (OWNER,))


def _bare_query(evaluator: FilterEvaluator, where: str) -> None:
    """One filter's SELECT on the already filled batch table, nothing else."""
    with evaluator._conn.cursor() as cur:  # noqa: SLF001 - a benchmark may look inside
        cur.execute(f"SELECT objectId FROM objects WHERE ({where})")
        cur.fetchall()


if __name__ == "__main__":
    main()
