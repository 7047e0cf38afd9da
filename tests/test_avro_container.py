"""The cached-schema container reader (cavro-accelerated) returns exactly what fastavro.reader does."""

import io

import fastavro
import pytest

from alertlab.ingest.avro_container import read_records
from alertlab.ingest.avro_decoder import Decoder, decoder
from alertlab.ingest.decode import SchemaResolver
from conftest import ROOT
from ingest_helpers import ZTF_FILES


def test_same_records_as_fastavro_on_real_alerts_and_lsst_samples():
    paths = ZTF_FILES + sorted(str(p) for p in (ROOT / "ingest" / "schemas" / "lsst").glob("*/0/sample_data/*.avro"))
    for path in paths:
        data = open(path, "rb").read()
        assert read_records(data) == list(fastavro.reader(io.BytesIO(data)))


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_many_records_and_blocks(codec):
    schema = {"type": "record", "name": "r", "fields": [{"name": "x", "type": "long"}, {"name": "s", "type": "string"}]}
    buf = io.BytesIO()
    records = [{"x": i, "s": "é" * (i % 5)} for i in range(5000)]
    fastavro.writer(buf, schema, records, codec=codec, sync_interval=1000)
    assert read_records(buf.getvalue()) == records


def test_truncated_container_raises():
    data = open(ZTF_FILES[0], "rb").read()
    with pytest.raises(Exception):
        read_records(data[: len(data) // 2])


def test_the_accelerated_decoder_is_used_for_ztf_and_every_lsst_schema():
    """The speed in docs/ingest.md assumes cavro decodes these; a fastavro fallback would be silently slower."""
    header = fastavro.reader(io.BytesIO(open(ZTF_FILES[0], "rb").read()))
    assert decoder(header.metadata["avro.schema"]).accelerated
    resolver = SchemaResolver()
    for schema_id in sorted(resolver.local_schemas()):
        assert resolver.get(schema_id).accelerated, schema_id


def test_confluent_wire_bodies_decode_like_fastavro():
    resolver = SchemaResolver()
    for path in sorted((ROOT / "ingest" / "schemas" / "lsst").glob("*/0/sample_data/*.avro")):
        record = next(fastavro.reader(open(path, "rb")))
        major = int(path.parts[-4])
        schema = fastavro.schema.load_schema(str(resolver.local_schemas()[major * 100]))
        body = io.BytesIO()
        fastavro.schemaless_writer(body, schema, record)
        assert resolver.get(major * 100).read(body.getvalue()) == [record]


def test_a_schema_the_accelerator_refuses_is_read_by_fastavro():
    # a record name with a dash is against the spec: cavro refuses it, fastavro (and so the ingest) reads it
    schema = {"type": "record", "name": "ztf-like", "fields": [{"name": "x", "type": "long"},
                                                             {"name": "s", "type": ["null", "string"]}]}
    d = Decoder(schema)
    assert not d.accelerated
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, {"x": 1, "s": None})
    fastavro.schemaless_writer(body, schema, {"x": -3, "s": "é"})
    assert d.read(body.getvalue(), 2) == [{"x": 1, "s": None}, {"x": -3, "s": "é"}]
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [{"x": 5, "s": "a"}])
    assert read_records(buf.getvalue()) == [{"x": 5, "s": "a"}]
