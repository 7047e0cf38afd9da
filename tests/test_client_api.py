"""alertlab.client over the alert data API: cone search, objects with light
curves and cutouts, asynchronous queries, watchlists, areas, filters, their
matches and annotations; from a laptop (ALERTLAB_URL and ALERTLAB_TOKEN) and
from a notebook kernel in the hub with no set-up."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

import alertlab.client as al
from alertlab.client import APIError, Client, TruncatedResult

pytest.register_assert_rewrite("hubfixtures", "apifixtures")
from apifixtures import moc_fits  # noqa: E402
from hubfixtures import TAG, run_cell  # noqa: E402

pytest_plugins = ["hubfixtures", "apifixtures"]
pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def laptop(hub, people, monkeypatch):
    """alice's script outside the hub: ALERTLAB_URL and one of her tokens."""
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("ALERTLAB_URL", hub.service_url)
    monkeypatch.setenv("ALERTLAB_TOKEN", people["alice"].token)
    return people["alice"].name


def client_of(hub, person) -> Client:
    return Client(url=hub.service_url, token=person.token)


def test_cone_and_object_with_light_curve_and_cutouts(laptop, api_data):
    ra, dec = api_data["centre"]
    found = al.cone(ra, dec, 40)
    assert isinstance(found, pd.DataFrame) and list(found["objectId"][:3]) == [
        f"{api_data['prefix']}c1", f"{api_data['prefix']}c5", f"{api_data['prefix']}c30"]
    assert np.allclose(found["arcsec"][:3], [1.0, 5.0, 30.0]) and found.attrs["count"] == len(found)
    assert al.cone(ra, dec, 40, mode="count") == 3
    assert list(al.cone(ra, dec, 3600, mode="nearest")["objectId"]) == [f"{api_data['prefix']}c1"]

    obj = al.object(api_data["star"])
    assert obj.row["ndet"] == 5 and obj.row["objectId"] == api_data["star"]
    lc = obj.lightcurve
    assert list(lc["kind"]) == ["nondetection"] * 3 + ["forced"] * 2 + ["detection"] * 5
    assert lc["mjd"].is_monotonic_increasing and lc["mag"].dtype.kind == "f"
    assert list(obj.detections["detectionId"]) == [d["detectionId"] for d in api_data["detections"]]
    assert {"alerce", "fink"} <= set(obj.annotations["annotator"])  # other tests add theirs
    stamp = obj.cutout("science")  # the latest detection that came with an alert
    assert stamp[0].data.shape == (63, 63)
    png = obj.cutout("difference", format="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(obj.cutouts()) == {"science", "template", "difference"}
    with pytest.raises(APIError) as err:
        al.object("ZTF00nosuchthing")
    assert (err.value.status, err.value.message) == (404, "there is no object ZTF00nosuchthing")


def test_asynchronous_query_gives_a_dataframe(laptop, api_data):
    sql = f"SELECT objectId, ndet, lastmjd FROM objects WHERE objectId LIKE '{api_data['prefix']}n%' ORDER BY objectId"
    job = al.query_async(sql, limit=300)
    df = job.result(timeout=60)
    assert df.attrs["truncated"] is True and len(df) == 300
    with pytest.warns(TruncatedResult):
        expected = al.query(sql, limit=300)
    pd.testing.assert_frame_equal(df, expected, check_dtype=False)
    assert job.id in [j.id for j in al.jobs()]
    job.cancel()
    bad = al.query_async("SELECT nosuch FROM objects")
    with pytest.raises(APIError, match="Unknown column 'nosuch'"):
        bad.result(timeout=60)


def test_watchlist_lifecycle_and_sharing(laptop, hub, people):
    cones = pd.DataFrame({"ra": [10.0, 20.0, 30.0], "dec": [1.0, 95.0, -3.0], "radius": [1.5, None, None],
                          "name": ["a", "bad", "c"], "magnitude": [1, 2, 3]})
    wl = al.create_watchlist(f"client-{TAG}", cones=cones, default_radius=4.0)
    assert wl.upload_report["stored"] == 2 and wl.upload_report["errors"] == [
        {"line": 3, "reason": "dec must be between -90 and 90 degrees: 95.0"}]
    assert wl.info["ncones"] == 2
    assert list(wl.cones()["radius"]) == [1.5, 4.0]
    with pytest.raises(APIError) as err:
        wl.upload("ra,dec\n1,x\n", strict=True)
    assert err.value.status == 422 and "nothing was stored" in err.value.message
    bob = client_of(hub, people["bob"])
    with pytest.raises(APIError, match="^403: watchlist .* is not shared with you$"):
        al.watchlist(wl.id, client=bob)
    wl.share(group=people["team"])
    seen = al.watchlist(wl.id, client=bob)
    assert seen.info["role"] == "viewer" and seen.name == f"client-{TAG}"
    assert wl.id in set(al.watchlists(client=bob)["id"])
    with pytest.raises(APIError, match="^403: you may not change"):
        seen.update(name="bob's now")
    assert wl.update(active=False).info["active"] is False
    assert wl.hits().empty
    wl.unshare(group=people["team"])
    wl.delete()
    with pytest.raises(APIError, match="^404"):
        wl.refresh()


def test_area_from_a_moc(laptop):
    from mocpy import MOC
    import io

    moc = MOC.from_fits(io.BytesIO(moc_fits(120.0, -10.0, 2.0)))
    area = al.create_area(f"gw-{TAG}", moc, description="a test region")
    assert area.info["sky_fraction"] == pytest.approx(moc.sky_fraction)
    assert area.moc() == moc
    assert area.id in set(al.areas()["id"])
    area.delete()


def test_filters_dry_run_refusal_and_matches(laptop, hub, people, api_data, services):
    from confluent_kafka import Producer

    from alertlab.ingest import events
    from alertlab.ingest.runner import producer_config

    run = al.dry_run("latest_mag < 14", days=1)
    assert run["matches"] == api_data["bright"] and run["allowed"] is True
    with pytest.raises(APIError) as err:
        al.create_filter("all of it", "ndet >= 0")
    assert err.value.status == 422 and "at most 10.0% is allowed" in err.value.message
    with pytest.raises(APIError, match="^422: the filter is refused: function BENCHMARK is not allowed$"):
        al.create_filter("slow", "BENCHMARK(1000, 1) = 0")
    f = al.create_filter(f"client-{TAG}", "latest_mag < 14")
    assert f.info["dry_run"]["matches"] == api_data["bright"] and f.dry_run(days=1)["allowed"] is True
    assert f.id in set(al.filters()["id"])

    now = people["alice"].get(f"filters/{f.id}/matches", params={"wait": 0}).json()["cursor"]
    producer = Producer(producer_config())
    publisher = events.EventPublisher(producer, "alertlab.matches")  # as the ingest publishes matches
    publisher.publish([events.build("filter", f.id, oid, 1000 + i, 60000.5, owner=people["alice"].name)
                       for i, oid in enumerate(("ZTFx1", "ZTFx2"))]
                      + [events.build("filter", f.id + 1000, "ZTFother", 3, 60000.5, owner="someone")])
    assert producer.flush(10) == 0
    got = [e for _, e in zip(range(2), al.matches(f.id, since=now, wait=2, timeout=30))]
    assert [e["objectId"] for e in got] == ["ZTFx1", "ZTFx2"] and all(e["id"] == f.id for e in got)
    with pytest.raises(APIError, match=f"^403: filter {f.id} is not shared with you$"):
        next(al.matches(f.id, since=now, wait=0, client=client_of(hub, people["carol"])))
    f.delete()


def test_annotations_from_the_client(hub, people, api_data):
    ann = client_of(hub, people["ann"])
    name = f"ann-{TAG}"
    assert al.annotate(api_data["star"], name, "AGN", classdict={"AGN": 0.6}, client=ann) == {
        "stored": 1, "published": 1}
    frame = pd.DataFrame({"objectId": [api_data["star"], f"{api_data['prefix']}c5"], "annotator": [name, name],
                          "classification": ["AGN", "star"], "version": ["2", None]})
    assert al.annotate_many(frame, client=ann)["stored"] == 2
    with pytest.raises(APIError, match=f"^403: you may not write annotations as fink: .*annotator:fink$"):
        al.annotate(api_data["star"], "fink", "SN", client=ann)


def test_the_client_works_in_a_hub_kernel_with_no_set_up(hub, people, api_data):
    name = people["carol"].name
    hub.spawn(name)
    ra, dec = api_data["centre"]
    cell = run_cell(hub.url, name, hub.token(name), f"""
import alertlab.client as al
print(al.cone({ra}, {dec}, 40, mode="count"))
obj = al.object("{api_data['star']}")
print(len(obj.lightcurve), obj.cutout("template")[0].data.shape)
print(al.dry_run("latest_mag < 14", days=1)["matches"])
""")
    assert cell["error"] is None, cell
    assert cell["stdout"].splitlines() == ["3", "10 (63, 63)", str(api_data["bright"])]
