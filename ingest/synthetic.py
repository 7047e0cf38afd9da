"""Synthetic ZTF and Rubin LSST alerts that look like the real streams, for benchmarks and tests.

    from alertlab.ingest.synthetic import ZtfGenerator, LsstGenerator

    gen = ZtfGenerator(seed=1)
    alerts = list(gen.alerts(100))        # dicts, valid against ZTF's alert schema 4.02
    messages = list(gen.messages(100))    # the next 100, one Avro container file each, as on ZTF's Kafka
    LsstGenerator(seed=1, schema_version="10.0").messages(100)   # Confluent wire format, schema id 1000

A generator is one survey observing night after night a fixed number of object slots
(``synthetic_sky``): supernova-like transients rising and fading, variable stars, AGN,
constant residuals and asteroids. Objects are re-observed, so several alerts share an
object, and each alert's history holds exactly the earlier detections (same candid /
diaSourceId as their own alerts, if those were in the stream) and non-detections of
its object within ``history_days``. ``alerts`` and ``messages`` continue one stream;
two generators built with the same arguments produce the same stream, and decoding
``messages(n)`` gives what ``alerts(n)`` returns. Cutouts come from a small pool of
realistic stamps (``synthetic_cutouts``), so they do not show the alert's own source.

The parts: ``synthetic_sky`` (objects, light curves, survey cadence, measurements),
``synthetic_ztf`` / ``synthetic_lsst`` (alert records), ``synthetic_packets`` (schemas,
fast Avro encoding), ``synthetic_cutouts`` (stamps).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from alertlab.ingest.synthetic_lsst import LsstGenerator
from alertlab.ingest.synthetic_packets import (SchemaNotFound, lsst_schema, lsst_schema_id, lsst_versions,
                                               ztf_schema)
from alertlab.ingest.synthetic_ztf import ZtfGenerator

__all__ = ["ZtfGenerator", "LsstGenerator", "ztf_schema", "lsst_schema", "lsst_schema_id", "lsst_versions",
           "SchemaNotFound", "bulk_object_rows"]


def bulk_object_rows(n: int, seed: int = 0, survey: str = "ztf", chunk: int = 20000) -> Iterator[dict]:
    """``n`` rows for the alert database's ``objects`` table (every column but ``updated``),
    made in vectorised chunks so a million come in well under a minute: for API and query
    benchmarks that need a big table, not light curves that add up (no detections behind them).

    Distributions follow the alerts: many objects seen once or twice (asteroids, bogus),
    a long tail of variables with hundreds of detections; ZTF objects in g and r with
    'ZTF..' names, LSST ones in ugrizy with numeric diaObject ids."""
    from alertlab.ingest.features import BANDS, EMA_TAUS, sky_columns
    from alertlab.ingest.synthetic_packets import base26

    rng = np.random.default_rng(seed)
    bands = "gr" if survey == "ztf" else "ugrizy"
    first_name = int(rng.integers(26 ** 5, 3 * 26 ** 5))
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        dmin, dmax = (-31.0, 90.0) if survey == "ztf" else (-90.0, 33.0)
        ra = rng.uniform(0, 360, m)
        dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(dmin)), np.sin(np.radians(dmax)), m)))
        sky = sky_columns(ra, dec)
        ndet = np.minimum(1 + rng.lognormal(0.8, 1.4, m).astype(int), 3000)
        first = rng.uniform(58200.0, 60600.0, m)
        last = first + np.where(ndet > 1, rng.uniform(0.02, 1.0, m) * np.minimum(60700 - first, 30 + 3 * ndet), 0.0)
        share = rng.dirichlet(np.ones(len(bands)), m)
        per_band = np.floor(share * ndet[:, None]).astype(int)
        per_band[np.arange(m), share.argmax(axis=1)] += ndet - per_band.sum(axis=1)
        mean = rng.uniform(15.0, 20.8, m)[:, None] + rng.normal(0, 0.3, (m, len(bands)))
        std = rng.lognormal(-1.5, 0.8, (m, len(bands)))
        latest = mean + rng.normal(0, 1, (m, len(bands))) * std
        latest_band = per_band.argmax(axis=1)
        for i in range(m):
            k = start + i
            row = {"objectId": f"ZTF{18 + k % 6:02d}{base26(first_name + k)}" if survey == "ztf" else
                   str(170_000_000_000_000_000 + k * 4096 + int(seed) % 4096),
                   "survey": survey, "ra": float(ra[i]), "decl": float(dec[i]), "healpix": int(sky["healpix"][i]),
                   "glat": float(sky["glat"][i]), "glon": float(sky["glon"][i]), "ndet": int(ndet[i]),
                   "firstmjd": float(first[i]), "lastmjd": float(last[i]),
                   "latest_mag": float(latest[i, latest_band[i]]), "latest_band": bands[latest_band[i]],
                   "latest_detectionId": 2_400_000_000_000_000_000 + k * 1000 + int(seed) % 1000,
                   "latest_reliability": float(rng.uniform(0.55, 1.0)), "g_minus_r": None, "g_minus_r_dt": None,
                   "nnondet": int(ndet[i] * rng.uniform(0.5, 4.0)), "sgscore1": float(rng.uniform()),
                   "distpsnr1": float(rng.lognormal(0.5, 1.0)), "ssdistnr": -999.0 if rng.uniform() < 0.9 else
                   float(rng.uniform(0, 5))}
            for b in BANDS:
                nb = int(per_band[i, bands.index(b)]) if b in bands else 0
                row[f"{b}_ndet"] = nb
                stats = {}
                if nb == 1:
                    lt = float(latest[i, bands.index(b)])
                    stats = dict.fromkeys(("mean", "median", "min", "max", "latest", *EMA_TAUS), lt)
                elif nb:
                    jb = bands.index(b)
                    mu, sd, lt = float(mean[i, jb]), float(std[i, jb]), float(latest[i, jb])
                    stats = {"mean": mu, "median": mu + 0.1 * sd, "std": sd, "min": min(mu - 2 * sd, lt),
                             "max": max(mu + 2 * sd, lt), "latest": lt, "rate": float(rng.normal(0, 0.05)),
                             **{name: lt + (mu - lt) * (1 - 2 ** (-tau / 4)) for name, tau in EMA_TAUS.items()}}
                for name in ("mean", "median", "std", "min", "max", "latest", "rate", *EMA_TAUS):
                    row[f"{b}_{name}"] = stats.get(name)
            if row.get("g_ndet") and row.get("r_ndet"):
                row["g_minus_r"] = row["g_latest"] - row["r_latest"]
                row["g_minus_r_dt"] = float(rng.uniform(0.0, 3.0))
            yield row
