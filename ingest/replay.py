"""`alertlab replay`: produce Avro files to a Kafka topic, one alert per message,
in the format the survey publishes (ZTF: an Avro container with the schema
embedded; LSST: the Confluent wire format with the schema id). For demos,
tests and benchmarks."""

from __future__ import annotations

import io
import re
import struct

import fastavro
from confluent_kafka import Producer

from alertlab.ingest.decode import CONTAINER_MAGIC


def lsst_schema_id(schema: dict) -> int | None:
    """Rubin's schema id for an lsst.vX_Y.alert writer schema (X*100+Y), else None."""
    m = re.match(r"lsst\.v(\d+)_(\d+)\.alert$", f"{schema.get('namespace', '')}.{schema.get('name', '')}".strip("."))
    if not m:
        m = re.match(r"lsst\.v(\d+)_(\d+)", str(schema.get("namespace", "")))
    return int(m.group(1)) * 100 + int(m.group(2)) if m else None


def messages_of_file(data: bytes) -> list[bytes]:
    """The Kafka messages for one file's alerts."""
    if data[:4] != CONTAINER_MAGIC:
        return [data]  # already a wire-format message (or garbage, which the ingest will reject)
    reader = fastavro.reader(io.BytesIO(data))
    schema = reader.writer_schema
    records = list(reader)
    sid = lsst_schema_id(schema)
    if sid is not None:
        parsed = fastavro.parse_schema(schema)
        out = []
        for rec in records:
            buf = io.BytesIO()
            buf.write(b"\x00" + struct.pack(">I", sid))
            fastavro.schemaless_writer(buf, parsed, rec)
            out.append(buf.getvalue())
        return out
    if len(records) == 1:
        return [data]
    out = []
    for rec in records:
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [rec])
        out.append(buf.getvalue())
    return out


def produce(producer: Producer, topic: str, messages, on_progress=None) -> int:
    n = 0
    for value in messages:
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
        if on_progress and n % 100 == 0:
            on_progress(n)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"{remaining} messages were not delivered to Kafka")
    return n
