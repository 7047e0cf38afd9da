"""Bytes from Kafka or a file to alert records, with the survey detected.

- An Avro container (starts with ``Obj\\x01``) embeds its writer schema: ZTF's
  Kafka messages are such containers, so every 3.x/4.x version is read without
  hard-coding one; LSST container files are read the same way.
- The Confluent wire format (byte 0, a 4-byte big-endian schema id, then a
  schemaless Avro body) is what Rubin publishes; the schema is resolved by id
  from a local schema directory, or from a schema registry when
  ALERTLAB_SCHEMA_REGISTRY is set.

Anything else raises ``DecodeError`` with a reason, which the ingest sends to
the dead-letter topic."""

from __future__ import annotations

import json
import re
import struct
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import fastavro

from alertlab.core import settings
from alertlab.core.errors import AlertLabError
from alertlab.ingest import lsst, ztf
from alertlab.ingest.avro_container import read_records
from alertlab.ingest.avro_decoder import Decoder

CONTAINER_MAGIC = b"Obj\x01"


class DecodeError(AlertLabError):
    """A message that is not a readable ZTF or LSST alert; ``reason`` says why."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass
class Alert:
    survey: str   # "ztf" or "lsst"
    record: dict


def survey_of(record: dict) -> str:
    if ztf.is_ztf(record):
        return "ztf"
    if lsst.is_lsst(record):
        return "lsst"
    raise DecodeError(f"not a ZTF or LSST alert (fields: {', '.join(list(record)[:8])})")


class SchemaResolver:
    """Confluent schema ids to Avro decoders (``avro_decoder.Decoder``), cached.

    Local ids follow Rubin's alert_packet convention: major*100 + minor
    (lsst.v11_0.alert is 1100)."""

    def __init__(self, schema_dir: Path | None = None, registry_url: str | None = None):
        self.schema_dir = schema_dir
        self.registry_url = registry_url
        self._cache: dict[int, Decoder] = {}
        self._lock = threading.Lock()

    def local_schemas(self) -> dict[int, Path]:
        found = {}
        root = self.schema_dir or Path(str(resources.files("alertlab.ingest") / "schemas" / "lsst"))
        for path in root.glob("*/*/lsst.v*_*.alert.avsc"):
            m = re.search(r"lsst\.v(\d+)_(\d+)\.alert\.avsc$", path.name)
            if m:
                found[int(m.group(1)) * 100 + int(m.group(2))] = path
        return found

    def get(self, schema_id: int) -> Decoder:
        with self._lock:
            if schema_id not in self._cache:
                self._cache[schema_id] = Decoder(self._load(schema_id))
            return self._cache[schema_id]

    def _load(self, schema_id: int) -> dict:
        if self.registry_url:
            import httpx

            try:
                resp = httpx.get(f"{self.registry_url.rstrip('/')}/schemas/ids/{schema_id}", timeout=10)
            except httpx.HTTPError as exc:
                raise DecodeError(f"schema registry unreachable for schema id {schema_id}: {exc}") from None
            if resp.status_code != 200:
                raise DecodeError(f"schema id {schema_id} unknown to the schema registry ({resp.status_code})")
            return json.loads(resp.json()["schema"])
        path = self.local_schemas().get(schema_id)
        if path is None:
            raise DecodeError(f"unknown schema id {schema_id} (local schemas: "
                              f"{sorted(self.local_schemas())})")
        return fastavro.schema.load_schema(str(path))


_default_resolver: SchemaResolver | None = None


def default_resolver() -> SchemaResolver:
    global _default_resolver
    registry = settings.get("ALERTLAB_SCHEMA_REGISTRY") or None
    if _default_resolver is None or _default_resolver.registry_url != registry:
        _default_resolver = SchemaResolver(registry_url=registry)
    return _default_resolver


def decode(data: bytes, survey: str | None = None, resolver: SchemaResolver | None = None) -> list[Alert]:
    """All alerts in one message or file. ``survey`` forces the survey instead of detecting it."""
    if not data:
        raise DecodeError("empty message")
    try:
        if data[:4] == CONTAINER_MAGIC:
            records = read_records(data)
        elif data[0] == 0 and len(data) > 5:
            schema_id = struct.unpack(">I", data[1:5])[0]
            records = (resolver or default_resolver()).get(schema_id).read(data[5:])
        else:
            raise DecodeError(f"neither an Avro container nor the Confluent wire format (first bytes {data[:8]!r})")
    except DecodeError:
        raise
    except (EOFError, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError, struct.error) as exc:
        raise DecodeError(f"undecodable Avro ({type(exc).__name__}: {str(exc)[:160]})") from None
    except Exception as exc:  # the Avro decoders raise a variety of errors on garbage
        raise DecodeError(f"undecodable Avro ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not records:
        raise DecodeError("Avro container holds no records")
    alerts = []
    for record in records:
        if not isinstance(record, dict):
            raise DecodeError("Avro record is not a record")
        detected = survey_of(record)
        if survey and survey != detected:
            raise DecodeError(f"expected a {survey.upper()} alert, got {detected.upper()}")
        alerts.append(Alert(detected, record))
    return alerts


def to_rows(alert: Alert):
    """The alert's database rows, or DecodeError when a required field is missing or wrong."""
    try:
        return (ztf if alert.survey == "ztf" else lsst).to_rows(alert.record)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # ArithmeticError: a magnitude of -1000
        raise DecodeError(f"invalid {alert.survey.upper()} alert: {type(exc).__name__}: {exc}") from None
