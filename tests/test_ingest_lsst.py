"""Rubin LSST sample alerts (schemas 9.0, 10.0, 11.0) land in the same tables,
from Avro container files and from Kafka in the Confluent wire format."""

from __future__ import annotations

import math
import struct

import fastavro
import pytest

from conftest import ROOT
from ingest_helpers import cli, ingest, replay, rows

pytestmark = pytest.mark.services


def _sample(version: int):
    return ROOT / "ingest" / "schemas" / "lsst" / str(version) / "0" / "sample_data" / "fakeAlert.avro"


@pytest.mark.parametrize("version", [9, 10, 11])
@pytest.mark.parametrize("route", ["files", "kafka"])
def test_lsst_sample_alert_lands_in_the_alert_tables(fresh_alerts_db, topic, version, route):
    path = _sample(version)
    with open(path, "rb") as fh:
        alert = next(fastavro.reader(fh))
    if route == "files":
        cli("ingest", "--files", str(path), "--quiet", "--no-match")
    else:
        from alertlab.ingest.replay import messages_of_file

        wire = messages_of_file(path.read_bytes())
        assert wire[0][0] == 0 and struct.unpack(">I", wire[0][1:5])[0] == version * 100
        replay(topic, files=[str(path)])
        from alertlab.ingest.runner import build_pipeline

        assert ingest(topic, pipeline=build_pipeline(match=False)).alerts == 1
    src = alert["diaSource"]
    object_id = str(alert["diaObject"]["diaObjectId"])
    (survey, mjd, band, mag, flux, isdiffpos, rel, oid), = rows(
        "SELECT survey, mjd, band, mag, flux, isdiffpos, reliability, objectId FROM detections WHERE detectionId=%s",
        (src["diaSourceId"],))
    assert (survey, band, oid) == ("lsst", src["band"], object_id)
    assert mjd == pytest.approx(src["midpointMjdTai"])
    assert flux == pytest.approx(src["psfFlux"])
    assert mag == pytest.approx(-2.5 * math.log10(src["psfFlux"]) + 31.4)
    assert isdiffpos == 1 and rel == pytest.approx(src["reliability"])
    history = {p["diaSourceId"] for p in alert["prvDiaSources"]}
    stored = {r[0] for r in rows("SELECT detectionId FROM detections WHERE objectId=%s", (object_id,))}
    assert stored == history | {src["diaSourceId"]}
    (ndet, survey), = rows("SELECT ndet, survey FROM objects WHERE objectId=%s", (object_id,))
    assert ndet == len(stored) and survey == "lsst"


def test_negative_lsst_flux_has_no_magnitude(fresh_alerts_db, tmp_path):
    from alertlab.ingest.synthetic import lsst_schema  # the generator's schema loader

    path = _sample(11)
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        alert = next(reader)
    alert["diaSourceId"] += 7
    alert["diaSource"] = {**alert["diaSource"], "diaSourceId": alert["diaSourceId"], "psfFlux": -350.0}
    # (the sample's top-level diaSourceId differs from its diaSource's; ingest keys on the diaSource)
    out = tmp_path / "negative.avro"
    with open(out, "wb") as fh:
        fastavro.writer(fh, lsst_schema("11.0"), [alert])
    cli("ingest", "--files", str(out), "--quiet", "--no-match")
    (mag, flux, isdiffpos), = rows("SELECT mag, flux, isdiffpos FROM detections WHERE detectionId=%s",
                                   (alert["diaSourceId"],))
    assert mag is None and flux == -350.0 and isdiffpos == 0


def test_wire_format_schema_from_a_schema_registry(monkeypatch):
    """With ALERTLAB_SCHEMA_REGISTRY set, schema ids are asked of the registry (Confluent's REST API)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from alertlab.ingest import decode as decode_mod
    from alertlab.ingest.replay import messages_of_file

    asked = []

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            if self.path == "/schemas/ids/1100":
                from alertlab.ingest.synthetic import lsst_schema

                body = json.dumps({"schema": json.dumps(lsst_schema("11.0"))}).encode()
                self.send_response(200)
            else:
                body = b'{"error_code": 40403, "message": "Schema not found"}'
                self.send_response(404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ALERTLAB_SCHEMA_REGISTRY", f"http://127.0.0.1:{server.server_port}")
        wire = messages_of_file(_sample(11).read_bytes())[0]
        alerts = decode_mod.decode(wire)
        assert alerts[0].survey == "lsst" and alerts[0].record["diaSource"]["band"] == "r"
        assert asked == ["/schemas/ids/1100"]
        unknown = b"\x00" + (4242).to_bytes(4, "big") + wire[5:]
        with pytest.raises(decode_mod.DecodeError, match="schema id 4242 unknown to the schema registry"):
            decode_mod.decode(unknown)
    finally:
        server.shutdown()
