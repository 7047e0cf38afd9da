"""The synthetic alert generators: schema-valid ZTF and LSST alerts, Kafka-exact messages,
histories that agree with earlier alerts, and sizes and distributions like the real stream."""

from __future__ import annotations

import collections
import glob
import gzip
import io
import re
import statistics
import uuid

import fastavro
import numpy as np
import pytest
from astropy.io import fits

from alertlab.core.errors import AlertLabError
from alertlab.ingest.synthetic import (LsstGenerator, SchemaNotFound, ZtfGenerator, bulk_object_rows, lsst_schema,
                                       lsst_schema_id, ztf_schema)
from conftest import SHARED_DATA

LSST_VERSIONS = ["9.0", "10.0", "11.0"]


def ztf_decode(message: bytes) -> tuple[dict, dict]:
    reader = fastavro.reader(io.BytesIO(message))
    records = list(reader)
    assert len(records) == 1
    return records[0], reader.writer_schema


def lsst_decode(message: bytes, version: str) -> dict:
    assert message[0] == 0
    assert int.from_bytes(message[1:5], "big") == lsst_schema_id(version)
    return fastavro.schemaless_reader(io.BytesIO(message[5:]), lsst_schema(version))


# -- ZTF ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ztf_stream():
    """600 alerts from 150 objects, and the same stream as Kafka messages."""
    alerts = list(ZtfGenerator(seed=7, n_objects=150).alerts(600))
    messages = list(ZtfGenerator(seed=7, n_objects=150).messages(600))
    return alerts, messages


def test_ztf_alerts_are_valid_against_schema_4_02(ztf_stream):
    alerts, _ = ztf_stream
    schema = ztf_schema()
    for alert in alerts[::4]:   # validation is slow; a quarter covers every kind of object
        assert fastavro.validation.validate(alert, schema)
    assert all(a["schemavsn"] == "4.02" and a["fp_hists"] is None for a in alerts)


def test_ztf_messages_are_container_files_that_decode_to_the_alerts(ztf_stream):
    alerts, messages = ztf_stream
    for alert, message in zip(alerts, messages):
        assert message[:4] == b"Obj\x01"
        record, writer_schema = ztf_decode(message)
        assert record == alert
    assert writer_schema["name"] == "ztf.alert" and writer_schema["version"] == "4.02"


def test_ztf_identifiers_follow_ztf_conventions(ztf_stream):
    alerts, _ = ztf_stream
    candids = [a["candid"] for a in alerts]
    assert len(set(candids)) == len(candids)
    for a in alerts:
        c = a["candidate"]
        assert re.fullmatch(r"ZTF\d{2}[a-z]{7}", a["objectId"])
        assert a["candid"] == c["candid"] and 2.4e18 < a["candid"] < 2.6e18
        assert c["candid"] // 10 ** 6 == c["pid"] and c["candid"] % 1000 == c["tblid"]
        assert c["pid"] // 10 ** 9 == c["nid"] and c["pid"] // 100 % 100 == c["rcid"]
        assert c["isdiffpos"] in ("t", "f") and c["fid"] in (1, 2)
        assert a["cutoutScience"]["fileName"] == f"candid{c['candid']}_pid{c['pid']}_targ_sci.fits.gz"


def test_ztf_objects_come_back_with_histories_that_match_their_earlier_alerts(ztf_stream):
    alerts, _ = ztf_stream
    seen = {}
    matched = 0
    for a in alerts:
        jd = a["candidate"]["jd"]
        history = a["prv_candidates"] or []
        assert [p["jd"] for p in history] == sorted(p["jd"] for p in history)
        for p in history:
            assert jd - 30 <= p["jd"] < jd
            if p["candid"] is None:   # an upper limit
                assert p["diffmaglim"] is not None and p["magpsf"] is None and p["ra"] is None
            elif p["candid"] in seen:
                earlier = seen[p["candid"]]
                assert earlier["objectId"] == a["objectId"]
                for key in ("jd", "fid", "pid", "magpsf", "sigmapsf", "ra", "dec", "isdiffpos", "rb", "diffmaglim"):
                    assert p[key] == earlier["candidate"][key], key
                matched += 1
        seen[a["candid"]] = a
    per_object = collections.Counter(a["objectId"] for a in alerts)
    assert sum(n >= 3 for n in per_object.values()) >= 30   # objects re-observed over nights
    assert matched >= 300


def test_ztf_light_curves_rise_fade_and_vary(ztf_stream):
    alerts, _ = ztf_stream
    curves = collections.defaultdict(list)
    for a in alerts:
        c = a["candidate"]
        curves[a["objectId"]].append((c["jd"], c["magpsf"] if c["isdiffpos"] == "t" else -c["magpsf"]))
    rising = fading = 0
    for points in curves.values():
        mags = [m for _, m in sorted(points) if m > 0]
        if len(mags) >= 3 and mags[-1] < mags[0] - 0.3:
            rising += 1
        if len(mags) >= 3 and mags[-1] > mags[0] + 0.3:
            fading += 1
    assert rising >= 3 and fading >= 3
    negative = sum(a["candidate"]["isdiffpos"] == "f" for a in alerts) / len(alerts)
    assert 0.05 < negative < 0.4


def test_ztf_detections_of_an_object_scatter_by_a_fraction_of_an_arcsecond(ztf_stream):
    alerts, _ = ztf_stream
    spreads = []
    for a in alerts:
        det = [p for p in a["prv_candidates"] or [] if p["candid"] is not None] + [a["candidate"]]
        if len(det) >= 4:
            ra, dec = np.array([p["ra"] for p in det]), np.array([p["dec"] for p in det])
            sep = np.hypot((ra - np.median(ra)) * np.cos(np.radians(dec)), dec - np.median(dec)) * 3600
            spreads.append(np.median(sep))
    assert 0.05 < statistics.median(spreads) < 0.3


def test_ztf_cutouts_are_gzip_fits_stamps(ztf_stream):
    alerts, _ = ztf_stream
    for kind in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
        data = alerts[0][kind]["stampData"]
        assert 10_000 < len(data) < 16_000
        with fits.open(io.BytesIO(gzip.decompress(data))) as hdul:
            assert hdul[0].data.shape == (63, 63) and hdul[0].data.dtype.kind == "f"
    assert ZtfGenerator(seed=1, n_objects=20, cutouts=False).alerts(1).__next__()["cutoutScience"] is None


def test_ztf_stream_is_reproducible_and_continues_across_calls():
    a = ZtfGenerator(seed=3, n_objects=60)
    first = [x["candid"] for x in a.alerts(40)] + [x["candid"] for x in a.alerts(40)]
    again = [x["candid"] for x in ZtfGenerator(seed=3, n_objects=60).alerts(80)]
    assert first == again
    same = [list(ZtfGenerator(seed=3, n_objects=60).messages(20)) for _ in range(2)]
    assert same[0] == same[1]
    other = [x["candid"] for x in ZtfGenerator(seed=4, n_objects=60).alerts(80)]
    assert other != again


def test_ztf_fp_hists_and_sky_cone():
    gen = ZtfGenerator(seed=5, n_objects=40, fp_hists=True, sky="150.0,2.2,1.0", cutouts=False)
    alerts = list(gen.alerts(60))
    messages = list(ZtfGenerator(seed=5, n_objects=40, fp_hists=True, sky="150.0,2.2,1.0", cutouts=False).messages(60))
    for alert, message in zip(alerts, messages):
        assert fastavro.validation.validate(alert, ztf_schema())
        assert ztf_decode(message)[0] == alert
        c = alert["candidate"]
        assert abs(c["dec"] - 2.2) < 1.01 and abs((c["ra"] - 150.0) * np.cos(np.radians(2.2))) < 1.01
    assert any(a["fp_hists"] for a in alerts)
    fp = next(f for a in alerts for f in a["fp_hists"] or [])
    assert fp["forcediffimflux"] is not None and fp["procstatus"] == "0"
    with pytest.raises(AlertLabError, match="sky must be"):
        ZtfGenerator(sky="north")


def test_ztf_is_like_the_real_stream():
    """Sizes and distributions against the 561 real alerts in the shared data."""
    files = sorted(glob.glob(str(SHARED_DATA / "ztf" / "alerts" / "*.avro")))
    assert len(files) > 500, "the real ZTF alerts are missing from the shared data"
    real, real_body = [], []
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        record, _ = ztf_decode(data)
        real.append(record)
        real_body.append(len(data) - len(fastavro.reader(io.BytesIO(data)).metadata["avro.schema"]))
    messages = list(ZtfGenerator(seed=0).messages(1500))
    syn, syn_body = [], []
    for m in messages:
        reader = fastavro.reader(io.BytesIO(m))
        syn.append(next(reader))
        syn_body.append(len(m) - len(reader.metadata["avro.schema"]))

    def median(alerts, f):
        return statistics.median(f(a) for a in alerts)

    assert all(30_000 < len(m) < 120_000 for m in messages)
    assert abs(statistics.median(syn_body) / statistics.median(real_body) - 1) < 0.15
    for kind in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
        size = lambda a: len(a[kind]["stampData"])
        assert abs(median(syn, size) / median(real, size) - 1) < 0.1, kind
    nprv = lambda a: len(a["prv_candidates"] or [])
    ndet = lambda a: sum(p["candid"] is not None for p in a["prv_candidates"] or [])
    assert 0.7 < median(syn, nprv) / median(real, nprv) < 1.4
    assert 2 <= median(syn, ndet) <= 12 and 8 <= median(syn, lambda a: nprv(a) - ndet(a)) <= 25
    mag = lambda a: a["candidate"]["magpsf"]
    assert abs(median(syn, mag) - median(real, mag)) < 0.8
    assert max(a["candidate"]["sigmapsf"] for a in syn) < 0.22   # every alert is a >= 5 sigma detection
    sigma = lambda a: a["candidate"]["sigmapsf"]
    assert abs(median(syn, sigma) - median(real, sigma)) < 0.06
    negative = lambda alerts: sum(a["candidate"]["isdiffpos"] in ("f", "0") for a in alerts) / len(alerts)
    assert abs(negative(syn) - negative(real)) < 0.1
    asteroids = sum(a["candidate"]["ssnamenr"] not in (None, "null") for a in syn) / len(syn)
    assert 0.05 < asteroids < 0.3


# -- LSST -----------------------------------------------------------------------------------
@pytest.mark.parametrize("version", LSST_VERSIONS)
def test_lsst_alerts_are_valid_and_messages_use_the_confluent_wire_format(version):
    alerts = list(LsstGenerator(seed=2, schema_version=version, n_objects=120).alerts(250))
    messages = list(LsstGenerator(seed=2, schema_version=version, n_objects=120).messages(250))
    schema = lsst_schema(version)
    for alert, message in zip(alerts, messages):
        assert lsst_decode(message, version) == alert
    for alert in alerts[::3]:   # validation is slow
        assert fastavro.validation.validate(alert, schema)
    sources = [a["diaSource"] for a in alerts]
    assert {s["band"] for s in sources} <= set("ugrizy") and len({s["band"] for s in sources}) >= 4
    assert any(s["psfFlux"] < 0 for s in sources) and any(s["psfFlux"] > 0 for s in sources)
    assert all(0 <= s["reliability"] <= 1 and 60000 < s["midpointMjdTai"] < 62000 for s in sources)
    assert all(abs(s["psfFlux"]) / s["psfFluxErr"] >= 4.9 for s in sources)   # 5-sigma detections, in nJy
    assert len({s["diaSourceId"] for s in sources}) == len(sources)
    with_history = [a for a in alerts if a["prvDiaSources"]]
    assert len(with_history) > 100
    for a in with_history:
        obj = a["diaObject"]["diaObjectId"]
        assert all(p["diaObjectId"] == obj and p["midpointMjdTai"] < a["diaSource"]["midpointMjdTai"]
                   for p in a["prvDiaSources"])
        assert a["prvDiaForcedSources"] and all(f["diaObjectId"] == obj for f in a["prvDiaForcedSources"])
        assert a["diaObject"]["nDiaSources"] >= len(a["prvDiaSources"]) + 1


def test_lsst_schema_ids_and_unknown_versions():
    assert [lsst_schema_id(v) for v in LSST_VERSIONS] == [900, 1000, 1100]
    assert next(LsstGenerator(seed=1, n_objects=30).messages(1))[:5] == b"\x00\x00\x00\x04\x4c"
    with pytest.raises(SchemaNotFound, match="have 9.0, 10.0, 11.0") as err:
        LsstGenerator(schema_version="12.0")
    assert isinstance(err.value, AlertLabError)


def test_lsst_solar_system_alerts_have_no_dia_object():
    alerts = list(LsstGenerator(seed=0).alerts(2500))
    sso = [a for a in alerts if a["ssSource"] is not None]
    assert 0.005 < len(sso) / len(alerts) < 0.05
    for a in sso:
        assert a["diaObject"] is None and a["diaSource"]["diaObjectId"] is None
        assert a["diaSource"]["ssObjectId"] == a["ssSource"]["ssObjectId"]
    assert all(a["diaObject"] is not None for a in alerts if a["ssSource"] is None)


def test_lsst_cutouts_are_fits_stamps_of_the_bounding_box():
    alert = next(LsstGenerator(seed=9, n_objects=30).alerts(1))
    for kind in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
        with fits.open(io.BytesIO(alert[kind])) as hdul:
            assert hdul[0].data.shape == (alert["diaSource"]["bboxSize"],) * 2
            assert hdul[0].header["BUNIT"] == "nJy" and "VARIANCE" in hdul


def test_lsst_files_are_avro_containers_of_the_same_alerts():
    files = list(LsstGenerator(seed=6, schema_version="10.0", n_objects=40).files(5))
    alerts = list(LsstGenerator(seed=6, schema_version="10.0", n_objects=40).alerts(5))
    assert [next(fastavro.reader(io.BytesIO(f))) for f in files] == alerts


# -- objects table ----------------------------------------------------------------------------
def test_bulk_object_rows_are_distinct_and_plausible():
    rows = list(bulk_object_rows(3000, seed=1))
    assert len({r["objectId"] for r in rows}) == 3000
    for r in rows[:200]:
        assert r["lastmjd"] >= r["firstmjd"] and r["ndet"] == r["g_ndet"] + r["r_ndet"]
        assert r["latest_band"] in "gr" and r["u_mean"] is None
    assert rows == list(bulk_object_rows(3000, seed=1))


@pytest.mark.services
def test_bulk_object_rows_load_into_the_objects_table(services, monkeypatch):
    import sqlalchemy as sa

    from alertlab.core import db, migrations

    name = f"alertlab_t{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ALERTLAB_ALERTS_DB", name)
    server = sa.create_engine(db.server_url())
    try:
        migrations.upgrade("alerts")
        rows = list(bulk_object_rows(2000, seed=2, survey="lsst")) + list(bulk_object_rows(2000, seed=2))
        columns = list(rows[0])
        names, marks = ", ".join(f"`{c}`" for c in columns), ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO objects ({names}) VALUES ({marks})"
        with db.engine("alerts").begin() as conn:
            conn.exec_driver_sql(sql, [tuple(r[c] for c in columns) for r in rows])
            count, bright = conn.exec_driver_sql(
                "SELECT COUNT(*), SUM(latest_mag < 18) FROM objects WHERE survey IN ('ztf', 'lsst')").one()
        assert count == 4000 and 0 < bright < 4000
    finally:
        with server.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()
        db.dispose_all()
