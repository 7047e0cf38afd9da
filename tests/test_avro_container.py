"""The cached-schema container reader returns exactly what fastavro.reader does."""

import io

import fastavro
import pytest

from alertlab.ingest.avro_container import read_records
from conftest import ROOT
from ingest_helpers import ZTF_FILES


def test_same_records_as_fastavro_on_real_alerts_and_lsst_samples():
    paths = ZTF_FILES + sorted(str(p) for p in (ROOT / "ingest" / "schemas" / "lsst").glob("*/0/sample_data/*.avro"))
    for path in paths:
        data = open(path, "rb").read()
        assert read_records(data)[1] == list(fastavro.reader(io.BytesIO(data)))


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_many_records_and_blocks(codec):
    schema = {"type": "record", "name": "r", "fields": [{"name": "x", "type": "long"}, {"name": "s", "type": "string"}]}
    buf = io.BytesIO()
    records = [{"x": i, "s": "é" * (i % 5)} for i in range(5000)]
    fastavro.writer(buf, schema, records, codec=codec, sync_interval=1000)
    assert read_records(buf.getvalue())[1] == records


def test_truncated_container_raises():
    data = open(ZTF_FILES[0], "rb").read()
    with pytest.raises(Exception):
        read_records(data[: len(data) // 2])
