"""Reading one Avro container message fast.

Every ZTF Kafka message is a whole Avro container file with its writer schema
embedded. ``fastavro.reader`` parses that schema again for every message,
which costs more than decoding the alert itself; here the header is read with
fastavro and the blocks with the writer schema's cached decoder
(``avro_decoder``). The result is the same records (tests compare with
``fastavro.reader`` on the real alerts); codecs other than null and deflate
fall back to ``fastavro.reader``."""

from __future__ import annotations

import io
import zlib

import fastavro
from fastavro.read import HEADER_SCHEMA, SYNC_SIZE

from alertlab.ingest.avro_decoder import decoder

_HEADER = fastavro.parse_schema(HEADER_SCHEMA)
_LONG = fastavro.parse_schema("long")


def read_records(data: bytes, accelerate: bool = True) -> list:
    """The records of an Avro container file held in ``data`` (``accelerate``: see ``avro_decoder``)."""
    fo = io.BytesIO(data)
    header = fastavro.schemaless_reader(fo, _HEADER, None)
    meta = header["meta"]
    codec = meta.get("avro.codec", b"null").decode()
    if codec not in ("null", "deflate"):
        return list(fastavro.reader(io.BytesIO(data)))
    decode = decoder(meta["avro.schema"], accelerate).read
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
        records.extend(decode(block, count))
        if fo.read(SYNC_SIZE) != header["sync"]:
            raise ValueError("Avro sync marker mismatch")
    return records
