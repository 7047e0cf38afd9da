"""The alert data API against the real hub, service, MariaDB and Kafka: objects
and light curves, cone search, cutouts, SQL (CSV, streaming, row caps, only
one's own hits), asynchronous queries, watchlists with CSV uploads, areas,
filters with dry runs, annotations, and a filter's match events end to end."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
import uuid

import numpy as np
import pytest
from PIL import Image

pytest.register_assert_rewrite("hubfixtures", "apifixtures")
from apifixtures import area_hit, hit, moc_fits  # noqa: E402
from hubfixtures import TAG  # noqa: E402

pytest_plugins = ["hubfixtures", "apifixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]


def ok(r, status=200):
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r


def new_watchlist(person, name="w", **kw) -> int:
    return ok(person.post("watchlists", json={"name": f"{name}-{uuid.uuid4().hex[:6]}", **kw}), 201)["id"]


# -- objects, cone, cutouts ------------------------------------------------------------------------

def test_object_page_has_the_light_curve_and_only_the_hits_one_may_see(people, api_data):
    alice, bob, carol, admin = people["alice"], people["bob"], people["carol"], people["admin"]
    star, det = api_data["star"], api_data["detections"]
    mine, theirs = new_watchlist(alice, "mine"), new_watchlist(carol, "theirs")
    hit(mine, star, det[4]["detectionId"])
    hit(theirs, star, det[3]["detectionId"])
    area = ok(alice.post("areas", files={"file": ("a.fits", moc_fits())}, data={"name": "gw"}), 201)["id"]
    area_hit(area, star, det[4]["detectionId"])

    page = ok(alice.get(f"objects/{star}"))
    assert page["object"]["objectId"] == star and page["object"]["ndet"] == 5
    assert [d["detectionId"] for d in page["detections"]] == [d["detectionId"] for d in det]  # oldest first
    assert page["detections"][2]["extra"] == {"fid": 1, "field": 602}  # JSON, not a string
    assert [d["mjd"] for d in page["nondetections"]] == [59990.0, 59991.0, 59992.0]
    assert [d["flux"] for d in page["forced_photometry"]] == [0.0, 12.5]
    annotations = {a["annotator"]: a["classdict"] for a in page["annotations"]}  # other tests add theirs
    assert annotations["alerce"] is None and annotations["fink"] == {"SN": 0.8, "AGN": 0.2}
    assert [h["watchlist_id"] for h in page["watchlist_hits"]] == [mine]
    assert [h["area_id"] for h in page["area_hits"]] == [area]

    assert [h["watchlist_id"] for h in ok(carol.get(f"objects/{star}"))["watchlist_hits"]] == [theirs]
    assert ok(bob.get(f"objects/{star}"))["watchlist_hits"] == []
    assert sorted(h["watchlist_id"] for h in ok(admin.get(f"objects/{star}"))["watchlist_hits"]) == \
        sorted([mine, theirs])
    ok(alice.put(f"watchlists/{mine}/shares", json={"grantee_kind": "group", "grantee": people["team"]}))
    assert [h["watchlist_id"] for h in ok(bob.get(f"objects/{star}"))["watchlist_hits"]] == [mine]
    assert ok(bob.get(f"objects/{star}"))["area_hits"] == []


def test_object_as_csv_is_its_light_curve(people, api_data):
    r = ok(people["bob"].get(f"objects/{api_data['star']}", params={"format": "csv"}))
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["kind"] for row in rows] == ["nondetection"] * 3 + ["forced"] * 2 + ["detection"] * 5
    assert [float(row["mjd"]) for row in rows] == sorted(float(row["mjd"]) for row in rows)
    assert rows[0]["diffmaglim"] == "20.5" and rows[-1]["mag"] == "17.6" and rows[-1]["mag"] != ""
    r = people["bob"].get("objects/ZTF00nosuchthing")
    assert r.status_code == 404 and r.json()["detail"] == "there is no object ZTF00nosuchthing"


def test_cone_search_finds_exactly_the_objects_within_the_radius(people, api_data):
    ra, dec = api_data["centre"]
    by_sep = sorted(api_data["seps"].items(), key=lambda kv: kv[1])
    bob = people["bob"]
    for radius in (0.5, 1.01, 4.99, 5.01, 40.0, 99.9, 100.1):
        found = ok(bob.get("cone", params={"ra": ra, "dec": dec, "radius": radius}))
        expected = [oid for oid, sep in by_sep if sep <= radius]
        assert [o["objectId"] for o in found["objects"] if o["objectId"].startswith(api_data["prefix"])] == expected
        assert found["count"] == len(found["objects"]) >= len(expected)
    nearest = ok(bob.get("cone", params={"ra": ra, "dec": dec, "radius": 3600, "mode": "nearest"}))
    assert [o["objectId"] for o in nearest["objects"]] == [by_sep[0][0]]
    assert nearest["objects"][0]["arcsec"] == pytest.approx(1.0, abs=1e-6)
    count = ok(bob.get("cone", params={"ra": ra, "dec": dec, "radius": 40, "mode": "count"}))
    assert count["count"] == 3 and count["objects"] == []
    cut = ok(bob.get("cone", params={"ra": ra, "dec": dec, "radius": 40, "limit": 2}))
    assert cut["truncated"] is True and len(cut["objects"]) == 2 and cut["count"] == 3
    for bad in ({"radius": 3601}, {"radius": 0}, {"dec": 91}, {"mode": "every"}):
        r = bob.get("cone", params={"ra": ra, "dec": dec, "radius": 10, **bad})
        assert r.status_code == 422, (bad, r.text)


def test_cutouts_come_as_fits_or_png(people, api_data):
    bob, with_alert = people["bob"], api_data["base"] + 3
    science, template, difference = api_data["stamps"]
    r = ok(bob.get(f"cutouts/{with_alert}/difference"))
    assert r.headers["content-type"] == "application/fits" and r.content == gzip.decompress(difference)
    r = ok(bob.get(f"cutouts/{with_alert}/science", params={"format": "png", "size": 200}))
    image = Image.open(io.BytesIO(r.content))
    assert r.headers["content-type"] == "image/png" and image.format == "PNG"
    assert 150 <= image.size[0] <= 200 and len(set(np.asarray(image).ravel().tolist())) > 50  # a real picture
    r = bob.get(f"cutouts/{api_data['base']}/science")  # a history detection: no stamps
    assert r.status_code == 404 and "no science cutout" in r.json()["detail"]
    assert bob.get(f"cutouts/{with_alert}/sideways").status_code == 422


# -- SQL ----------------------------------------------------------------------------------------------

def test_query_answers_csv_streams_large_results_and_enforces_the_row_cap(people, api_data):
    bob, pat = people["bob"], people["pat"]
    sql = (f"SELECT objectId, lastmjd, latest_mag FROM objects WHERE objectId LIKE '{api_data['prefix']}n%' "
           "ORDER BY objectId")
    small = ok(bob.post("query", json={"sql": sql, "limit": 1000}))
    assert len(small["rows"]) == api_data["night_objects"] and small["truncated"] is False
    streamed = ok(bob.post("query", json={"sql": sql, "limit": 50_000}))  # above 10,000: streamed
    assert streamed == small
    cut = ok(bob.post("query", json={"sql": sql, "limit": 20_000, "offset": 390}))
    assert cut["rows"] == small["rows"][390:] and cut["truncated"] is False
    r = ok(bob.post("query", json={"sql": sql, "limit": 3}, headers={"Accept": "text/csv"}))
    assert r.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(r.text))) == [["objectId", "lastmjd", "latest_mag"]] + [
        [str(v) for v in row] for row in small["rows"][:3]]
    big = f"SELECT objectId FROM objects WHERE objectId LIKE '{api_data['prefix']}%'"
    r = bob.post("query", json={"sql": big, "limit": 200_000})
    assert r.status_code == 400 and r.json()["detail"].startswith("a query returns at most 100,000 rows for a user")
    assert "async=true" in r.json()["detail"]
    assert len(ok(pat.post("query", json={"sql": big, "limit": 200_000}))["rows"]) > 400  # a power user may


def test_the_hostile_corpus_is_refused_by_the_api_with_the_guards_reason(people):
    """tests/hostile_queries.json through POST query: each refused query is a 400 with its reason,
    and no alert table changed (the ones the time limit stops: test_api_ratelimit.py)."""
    from pathlib import Path

    from alertlab.core import db

    corpus = json.loads((Path(__file__).parent / "hostile_queries.json").read_text())
    rejected = [c for c in corpus if c["outcome"] == "rejected"]
    assert len(rejected) >= 100

    def snapshot():
        with db.engine("alerts").connect() as conn:
            tables = [r[0] for r in conn.exec_driver_sql("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")]
            return {t: conn.exec_driver_sql(f"CHECKSUM TABLE `{t}`").fetchone()[1] for t in tables}

    before = snapshot()
    pat = people["pat"]
    for case in rejected:
        r = pat.post("query", json={"sql": case["sql"], "limit": 10})
        assert r.status_code == 400, (case, r.status_code, r.text[:300])
        assert case["reason"] in r.json()["detail"], (case, r.json())
    assert snapshot() == before


def test_query_sees_only_ones_own_and_shared_watchlist_hits(people, api_data):
    alice, bob, carol, admin = people["alice"], people["bob"], people["carol"], people["admin"]
    star, det = api_data["star"], api_data["detections"]
    a, c = new_watchlist(alice, "qa"), new_watchlist(carol, "qc")
    hit(a, star, det[0]["detectionId"])
    hit(c, star, det[1]["detectionId"])
    sql = f"SELECT DISTINCT h.watchlist_id FROM watchlist_hits h WHERE h.watchlist_id IN ({a}, {c}) ORDER BY 1"
    assert ok(alice.post("query", json={"sql": sql}))["rows"] == [[a]]
    assert ok(carol.post("query", json={"sql": sql}))["rows"] == [[c]]
    assert ok(bob.post("query", json={"sql": sql}))["rows"] == []
    assert ok(admin.post("query", json={"sql": sql}))["rows"] == [[a], [c]]
    in_subquery = (f"SELECT COUNT(*) FROM objects WHERE objectId IN (SELECT objectId FROM alerts.watchlist_hits "
                   f"WHERE watchlist_id = {c})")
    assert ok(alice.post("query", json={"sql": in_subquery}))["rows"] == [[0]]
    ok(carol.put(f"watchlists/{c}/shares", json={"grantee_kind": "user", "grantee": bob.name}))
    assert ok(bob.post("query", json={"sql": sql}))["rows"] == [[c]]


def test_asynchronous_query_is_stored_and_fetched_by_its_owner_only(people, api_data):
    alice, bob = people["alice"], people["bob"]
    sql = f"SELECT objectId, ndet FROM objects WHERE objectId LIKE '{api_data['prefix']}n%' ORDER BY objectId"
    job = ok(alice.post("query", params={"async": "true"}, json={"sql": sql, "limit": 250}), 202)
    assert job["status"] in ("queued", "running", "done") and len(job["id"]) == 32
    for _ in range(100):
        job = ok(alice.get(f"query/jobs/{job['id']}"))
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert job["status"] == "done" and job["nrows"] == 250 and job["truncated"] is True
    result = ok(alice.get(f"query/jobs/{job['id']}/result"))
    assert result == ok(alice.post("query", json={"sql": sql, "limit": 250}))
    text = ok(alice.get(f"query/jobs/{job['id']}/result", params={"format": "csv"})).text
    assert text.splitlines()[0] == "objectId,ndet" and len(text.splitlines()) == 251
    assert job["id"] in [j["id"] for j in ok(alice.get("query/jobs"))]
    assert bob.get(f"query/jobs/{job['id']}").status_code == 403
    assert bob.get(f"query/jobs/{job['id']}/result").status_code == 403
    assert job["id"] not in [j["id"] for j in ok(bob.get("query/jobs"))]
    failed = ok(alice.post("query", params={"async": "true"}, json={"sql": "SELECT nosuch FROM objects"}), 202)
    for _ in range(100):
        failed = ok(alice.get(f"query/jobs/{failed['id']}"))
        if failed["status"] == "failed":
            break
        time.sleep(0.1)
    assert "Unknown column 'nosuch'" in failed["error"]
    r = alice.get(f"query/jobs/{failed['id']}/result")
    assert r.status_code == 409 and "failed" in r.json()["detail"]
    assert alice.post("query", params={"async": "true"}, json={"sql": "DROP TABLE x"}).status_code == 400
    assert alice.delete(f"query/jobs/{job['id']}").status_code == 204
    assert alice.get(f"query/jobs/{job['id']}").status_code == 404


# -- watchlists ---------------------------------------------------------------------------------------

def test_a_million_cones_upload_with_row_errors_reported(people):
    alice = people["alice"]
    wid = new_watchlist(alice, "big", default_radius=3.0)
    rng = np.random.default_rng(5)
    n = 1_000_000
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    body = io.StringIO()
    body.write("ra,dec,radius,name\n")
    np.savetxt(body, np.c_[ra, dec], fmt="%.6f", delimiter=",", newline=",,\n")
    lines = body.getvalue().splitlines(keepends=True)
    lines[10] = "12.5,99,,bad-dec\n"              # line 11
    lines[500_000] = "abc,1,,bad-ra\n"            # line 500,001
    lines.append("1,2,4000,too-wide\n")           # line 1,000,002
    r = alice.post(f"watchlists/{wid}/cones", files={"file": ("cones.csv", "".join(lines).encode())}, timeout=300)
    report = ok(r)
    assert report["stored"] == n - 2 and report["ncones"] == n - 2 and report["rejected"] == 3
    assert [(e["line"], e["reason"]) for e in report["errors"]] == [
        (11, "dec must be between -90 and 90 degrees: 99"), (500_001, "ra is not a number: 'abc'"),
        (1_000_002, "radius must be more than 0 and at most 3600 arcsec: 4000")]
    cones = ok(alice.get(f"watchlists/{wid}/cones", params={"limit": 2}))
    assert cones[0]["radius"] == 3.0 and cones[0]["ra"] == pytest.approx(ra[0], abs=1e-6)
    r = alice.post(f"watchlists/{wid}/cones", files={"file": ("more.csv", b"ra,dec\n1,2\n3,4\n5,6\n")})
    assert r.status_code == 422 and "a watchlist holds at most 1,000,000" in r.json()["detail"]
    t = time.monotonic()
    assert alice.delete(f"watchlists/{wid}").status_code == 204
    assert time.monotonic() - t < 60


def test_strict_upload_stores_nothing_and_replace_replaces(people):
    alice, bob = people["alice"], people["bob"]
    wid = new_watchlist(alice, "strict", cones=[{"ra": 1, "dec": 1, "name": "first"}])
    r = alice.post(f"watchlists/{wid}/cones", params={"strict": "true"},
                   files={"file": ("c.csv", b"ra,dec,name\n10,10,a\n10,x,b\n")})
    assert r.status_code == 422
    assert r.json()["detail"] == "1 rows have errors (line 3: dec is not a number: 'x'); nothing was stored (strict)"
    assert r.json()["errors"] == [{"line": 3, "reason": "dec is not a number: 'x'"}]
    assert ok(alice.get(f"watchlists/{wid}"))["ncones"] == 1
    r = ok(alice.post(f"watchlists/{wid}/cones", params={"replace": "true"},
                      files={"file": ("c.csv", b"ra,dec,radius,name\n10,10,5,a\n20,-5,,b\n")}))
    assert r["ncones"] == 2
    assert [(c["name"], c["radius"]) for c in ok(alice.get(f"watchlists/{wid}/cones"))] == [("a", 5.0), ("b", 2.0)]
    r = alice.post(f"watchlists/{wid}/cones", files={"file": ("c.csv", b"name,size\nx,1\n")})
    assert r.status_code == 422 and "names no ra and no dec column" in r.json()["detail"]
    # an editor may add cones; a viewer may not
    ok(alice.put(f"watchlists/{wid}/shares", json={"grantee_kind": "user", "grantee": bob.name, "role": "viewer"}))
    assert bob.post(f"watchlists/{wid}/cones", files={"file": ("c.csv", b"1,2\n")}).status_code == 403
    ok(alice.put(f"watchlists/{wid}/shares", json={"grantee_kind": "user", "grantee": bob.name, "role": "editor"}))
    assert ok(bob.post(f"watchlists/{wid}/cones", files={"file": ("c.csv", b"1,2\n")}))["ncones"] == 3
    assert bob.delete(f"watchlists/{wid}").status_code == 403
    assert ok(alice.get(f"watchlists/{wid}/shares"))[0]["role"] == "editor"
    assert alice.delete(f"watchlists/{wid}/shares", params={"grantee_kind": "user", "grantee": bob.name}
                        ).status_code == 204
    assert bob.get(f"watchlists/{wid}").status_code == 403


def test_public_watchlists_are_read_only_for_everyone(people):
    alice, carol = people["alice"], people["carol"]
    wid = new_watchlist(alice, "public", description="shared with all")
    assert wid not in [w["id"] for w in ok(carol.get("watchlists"))]
    r = alice.put(f"watchlists/{wid}/shares", json={"grantee_kind": "all", "role": "editor"})
    assert r.status_code == 422 and "can only be viewers" in r.json()["detail"]
    ok(alice.put(f"watchlists/{wid}/shares", json={"grantee_kind": "all"}))
    listed = {w["id"]: w for w in ok(carol.get("watchlists"))}
    assert listed[wid]["role"] == "viewer" and listed[wid]["description"] == "shared with all"
    assert carol.patch(f"watchlists/{wid}", json={"name": "mine now"}).status_code == 403
    assert ok(alice.patch(f"watchlists/{wid}", json={"name": "renamed", "active": False}))["active"] is False


# -- areas ----------------------------------------------------------------------------------------------

def test_areas_from_moc_fits(people, api_data):
    alice, bob = people["alice"], people["bob"]
    data = moc_fits(10.0, 20.0, 1.0)
    area = ok(alice.post("areas", files={"file": ("gw.fits", data)}, data={"name": "GW", "description": "S230"}), 201)
    assert area["sky_fraction"] == pytest.approx(np.pi / 41253, rel=0.2) and area["role"] == "owner"
    from mocpy import MOC

    moc = MOC.from_fits(io.BytesIO(ok(alice.get(f"areas/{area['id']}/moc")).content))
    assert moc.sky_fraction == pytest.approx(area["sky_fraction"])
    r = alice.post("areas", files={"file": ("junk.fits", b"SIMPLE  = not really")}, data={"name": "junk"})
    assert r.status_code == 422 and r.json()["detail"].startswith("not a spatial MOC in FITS")
    area_hit(area["id"], api_data["star"], api_data["detections"][0]["detectionId"])
    assert [h["objectId"] for h in ok(alice.get(f"areas/{area['id']}/hits"))] == [api_data["star"]]
    assert bob.get(f"areas/{area['id']}/hits").status_code == 403
    assert alice.delete(f"areas/{area['id']}").status_code == 204
    assert alice.get(f"areas/{area['id']}").status_code == 404


# -- filters --------------------------------------------------------------------------------------------

def test_filters_are_checked_and_dry_run_and_refused_when_they_match_too_much(people, api_data):
    alice, bob = people["alice"], people["bob"]
    run = ok(alice.post("filters/dry-run", json={"where_sql": "latest_mag < 14", "days": 2}))
    assert run["until_mjd"] == pytest.approx(api_data["night"] + 0.1 + 0.8 * 399 / 400)
    assert run["nights"] == [{"night": api_data["night"], "objects": api_data["night_objects"],
                              "matches": api_data["bright"], "share": api_data["bright"] / 400}]
    assert run["allowed"] is True and run["seconds"] < 10 and len(run["sample"]) == api_data["bright"]
    r = alice.post("filters", json={"name": "everything", "where_sql": "ndet >= 1"})
    assert r.status_code == 422
    assert r.json()["detail"] == ("the filter is refused: the filter matches 100.0% of the objects of night "
                                  f"{api_data['night']} (MJD) (400 of 400); at most 10.0% is allowed: make it more "
                                  "selective")
    r = alice.post("filters", json={"name": "sleepy", "where_sql": "SLEEP(5) = 0"})
    assert r.status_code == 422 and r.json()["detail"] == "the filter is refused: function SLEEP is not allowed"
    r = alice.post("filters", json={"name": "typo", "where_sql": "latest_mag < 14 AND nosuch = 1"})
    assert r.status_code == 422 and "Unknown column 'nosuch'" in r.json()["detail"]
    f = ok(alice.post("filters", json={"name": "bright", "where_sql": "latest_mag < 14"}), 201)
    assert f["active"] is True and f["dry_run"]["matches"] == api_data["bright"]
    inactive = ok(alice.post("filters", json={"name": "later", "where_sql": "ndet >= 1", "active": False}), 201)
    r = alice.patch(f"filters/{inactive['id']}", json={"active": True})
    assert r.status_code == 422 and "100.0%" in r.json()["detail"]
    assert bob.patch(f"filters/{f['id']}", json={"where_sql": "latest_mag < 13.5"}).status_code == 403
    ok(alice.put(f"filters/{f['id']}/shares", json={"grantee_kind": "group", "grantee": people["team"],
                                                    "role": "editor"}))
    changed = ok(bob.patch(f"filters/{f['id']}", json={"where_sql": "latest_mag < 13.5 AND ndet >= 2"}))
    assert changed["where_sql"] == "latest_mag < 13.5 AND ndet >= 2" and changed["role"] == "editor"
    assert f["id"] in [x["id"] for x in ok(bob.get("filters"))]
    assert bob.delete(f"filters/{f['id']}").status_code == 403
    for fid in (f["id"], inactive["id"]):
        assert alice.delete(f"filters/{fid}").status_code == 204


# -- annotations ----------------------------------------------------------------------------------------

def _metadata(consumer, topic: str):
    """The topic's metadata (None if it does not exist yet), asked again if the busy broker does not answer."""
    from confluent_kafka import KafkaException

    for attempt in range(5):
        try:
            return consumer.list_topics(topic, timeout=20).topics.get(topic)
        except KafkaException:
            if attempt == 4:
                raise
            time.sleep(2)


def test_annotators_write_annotations_and_an_event_is_published(people, api_data, services):
    from confluent_kafka import Consumer, TopicPartition

    from alertlab.core import db

    ann, carol, star = people["ann"], people["carol"], api_data["star"]
    name = f"ann-{TAG}"
    topic = "alertlab.matches"
    from alertlab.core.kafka_client import client_config

    consumer = Consumer(client_config(**{"group.id": f"t-{uuid.uuid4().hex}", "enable.auto.commit": False,
                                         "log_level": 0}))
    meta = _metadata(consumer, topic)
    start = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
             for p in (meta.partitions if meta and meta.partitions else [])}
    r = carol.post("annotations", json={"objectId": star, "annotator": name, "classification": "SN"})
    assert r.status_code == 403 and f"hub group annotator:{name}" in r.json()["detail"]
    r = ann.post("annotations", json={"objectId": star, "annotator": "fink", "classification": "SN"})
    assert r.status_code == 403 and "as fink" in r.json()["detail"]
    assert ok(ann.post("annotations", json={"objectId": star, "annotator": name, "classification": "SN II",
                                            "classdict": {"SN II": 0.7}, "version": "1"}), 201) == \
        {"stored": 1, "published": 1}
    batch = [{"objectId": f"{api_data['prefix']}c{s}", "annotator": name, "classification": "star"} for s in (5, 30)]
    assert ok(ann.post("annotations", json={"annotations": batch}), 201)["stored"] == 2
    with db.engine("alerts").connect() as conn:
        rows = conn.exec_driver_sql("SELECT objectId, classification, classdict FROM annotations WHERE annotator = %s "
                                    "ORDER BY objectId", (name,)).all()
        history = conn.exec_driver_sql("SELECT COUNT(*) FROM annotations_history WHERE annotator = %s",
                                       (name,)).scalar()
    assert [(r[0], r[1]) for r in rows] == sorted([(star, "SN II"), (batch[0]["objectId"], "star"),
                                                   (batch[1]["objectId"], "star")])
    assert json.loads(rows[0][2]) == {"SN II": 0.7} and history == 3
    mine = []
    try:
        parts = _metadata(consumer, topic).partitions
        consumer.assign([TopicPartition(topic, p, start.get(p, 0)) for p in parts])
        deadline = time.monotonic() + 30
        while len(mine) < 3 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                event = json.loads(msg.value())
                if event["kind"] == "annotation" and event["id"] == name:
                    mine.append(event)
    finally:
        consumer.close()
    assert sorted(e["objectId"] for e in mine) == sorted([star] + [b["objectId"] for b in batch])
    assert {e["classification"] for e in mine} == {"SN II", "star"}


# -- a filter's matches, from the ingest to the long poll -----------------------------------------------

def test_a_filters_matches_reach_its_owner_and_sharers(people, services):
    from confluent_kafka import Producer

    from alertlab.core import db
    from alertlab.ingest.pipeline import RawMessage
    from alertlab.ingest.runner import build_pipeline, producer_config
    from alertlab.ingest.synthetic import ZtfGenerator

    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    seed = int(TAG, 16)
    alerts = list(ZtfGenerator(seed=seed).alerts(40))
    wanted = sorted({a["objectId"] for a in alerts})[:2]
    where = f"objectId IN ('{wanted[0]}', '{wanted[1]}')"
    f = ok(alice.post("filters", json={"name": "two objects", "where_sql": where}), 201)
    before = ok(alice.get(f"filters/{f['id']}/matches", params={"wait": 0}))
    assert before["events"] == []
    producer = Producer(producer_config())
    pipeline = build_pipeline(producer)
    pipeline.filters.refresh_seconds = 0
    try:
        pipeline.process([RawMessage(m) for m in ZtfGenerator(seed=seed).messages(40)])
    finally:
        pipeline.filters.close()
        producer.flush(10)
    try:
        events, cursor = [], before["cursor"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and {e["objectId"] for e in events} != set(wanted):
            page = ok(alice.get(f"filters/{f['id']}/matches", params={"cursor": cursor, "wait": 5}))
            events += page["events"]
            cursor = page["cursor"]
        assert {e["objectId"] for e in events} == set(wanted)
        assert {(e["kind"], e["id"], e["owner"]) for e in events} == {("filter", f["id"], alice.name)}
        assert ok(alice.get(f"filters/{f['id']}/matches", params={"cursor": cursor, "wait": 0}))["events"] == []
        assert carol.get(f"filters/{f['id']}/matches", params={"wait": 0}).status_code == 403
        ok(alice.put(f"filters/{f['id']}/shares", json={"grantee_kind": "user", "grantee": bob.name}))
        replay = ok(bob.get(f"filters/{f['id']}/matches", params={"cursor": before["cursor"], "wait": 1}))
        assert {e["objectId"] for e in replay["events"]} == set(wanted)
        r = bob.get(f"filters/{f['id']}/matches", params={"cursor": "0:x"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "cursor"]
    finally:
        alice.delete(f"filters/{f['id']}")
        ids = sorted({a["objectId"] for a in alerts})
        marks = ", ".join(["%s"] * len(ids))
        with db.engine("alerts").begin() as conn:
            dets = conn.exec_driver_sql(f"SELECT detectionId FROM detections WHERE objectId IN ({marks})",
                                        tuple(ids)).scalars().all()
            for table in ("objects", "detections", "nondetections", "forced_photometry", "watchlist_hits",
                          "area_hits"):
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE objectId IN ({marks})", tuple(ids))
            if dets:
                conn.exec_driver_sql(f"DELETE FROM cutouts WHERE detectionId IN ({', '.join(['%s'] * len(dets))})",
                                     tuple(dets))
