"""Reading one Avro container message fast.

Every ZTF Kafka message is a whole Avro container file with its writer schema
embedded. ``fastavro.reader`` parses that schema again for every message,
which costs more than decoding the alert itself; here the parsed schema is
cached by its JSON text, and the blocks are decoded with fastavro's
schemaless reader. The result is the same records (tests compare with
``fastavro.reader`` on the real alerts); codecs other than null and deflate
fall back to ``fastavro.reader``."""

from __future__ import annotations

import io
import json
import zlib
from collections import OrderedDict

import fastavro
from fastavro.read import HEADER_SCHEMA, SYNC_SIZE

_HEADER = fastavro.parse_schema(HEADER_SCHEMA)
_LONG = fastavro.parse_schema("long")
_CACHE_SIZE = 64
_schemas: OrderedDict[bytes, dict] = OrderedDict()


def _schema(text: bytes) -> dict:
    parsed = _schemas.get(text)
    if parsed is None:
        parsed = fastavro.parse_schema(json.loads(text))
        _schemas[text] = parsed
        if len(_schemas) > _CACHE_SIZE:
            _schemas.popitem(last=False)
    else:
        _schemas.move_to_end(text)
    return parsed


def read_records(data: bytes) -> tuple[dict, list]:
    """(writer schema, records) of an Avro container file held in ``data``."""
    fo = io.BytesIO(data)
    header = fastavro.schemaless_reader(fo, _HEADER, None)
    meta = header["meta"]
    codec = meta.get("avro.codec", b"null").decode()
    if codec not in ("null", "deflate"):
        reader = fastavro.reader(io.BytesIO(data))
        return reader.writer_schema, list(reader)
    schema = _schema(meta["avro.schema"])
    records = []
    end = len(data)
    while fo.tell() < end:
        count = fastavro.schemaless_reader(fo, _LONG, None)
        size = fastavro.schemaless_reader(fo, _LONG, None)
        block = fo.read(size)
        if len(block) != size:
            raise EOFError("truncated Avro block")
        if codec == "deflate":
            block = zlib.decompress(block, -15)
        bfo = io.BytesIO(block)
        for _ in range(count):
            records.append(fastavro.schemaless_reader(bfo, schema, None))
        if fo.read(SYNC_SIZE) != header["sync"]:
            raise ValueError("Avro sync marker mismatch")
    return schema, records
