"""What the synthetic ZTF and LSST generators share: the alert schemas, fast Avro
packets, and the stream of simulated detections they format.

Speed is the point of the encoding part: each history entry of an alert is encoded
once, when first needed, and then spliced into every later alert that carries it,
and the big flat records go through fastavro with union-free equivalent schemas
(`FlatEncoder`). The tests decode messages with the real schemas and compare them
with the dicts of `alerts()`, which do not go through this code.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import io
import itertools
import operator
import struct
from pathlib import Path
from typing import Iterator

import fastavro
from fastavro.schema import load_schema, load_schema_ordered, parse_schema

from alertlab.core.errors import AlertLabError
from alertlab.ingest.synthetic_sky import Simulation, Survey

SCHEMAS = Path(__file__).resolve().parent / "schemas"
ZTF_SCHEMA_FILES = ("cutout", "candidate", "prv_candidate", "fp_hist", "alert")  # dependencies first
DEFAULT_OBJECTS = 1000


class SchemaNotFound(AlertLabError):
    """No copy of the requested alert schema in ingest/schemas."""


# -- schemas ------------------------------------------------------------------------------
@functools.cache
def ztf_schema() -> dict:
    """ZTF alert schema 4.02, parsed by fastavro with its named types resolved (shared: do not modify)."""
    return load_schema_ordered([str(SCHEMAS / "ztf" / f"{name}.avsc") for name in ZTF_SCHEMA_FILES])


def lsst_versions() -> list[str]:
    """The LSST schema versions available, e.g. ['9.0', '10.0', '11.0']."""
    found = [p.parent.relative_to(SCHEMAS / "lsst").parts for p in (SCHEMAS / "lsst").glob("*/*/lsst.v*.alert.avsc")]
    return [f"{a}.{b}" for a, b in sorted((int(a), int(b)) for a, b in found)]


def parse_version(version: str) -> tuple[int, int]:
    try:
        major, minor = (int(x) for x in str(version).split("."))
    except ValueError:
        raise SchemaNotFound(f"LSST schema version must look like '11.0', not {version!r}") from None
    return major, minor


@functools.cache
def lsst_schema(version: str = "11.0") -> dict:
    """Rubin's alert schema ``lsst.vX_Y.alert``, parsed by fastavro with its named types resolved."""
    major, minor = parse_version(version)
    path = SCHEMAS / "lsst" / str(major) / str(minor) / f"lsst.v{major}_{minor}.alert.avsc"
    if not path.exists():
        raise SchemaNotFound(f"no LSST alert schema {major}.{minor} in {SCHEMAS / 'lsst'} "
                             f"(have {', '.join(lsst_versions())})")
    return load_schema(str(path))


def lsst_schema_id(version: str) -> int:
    """Confluent schema id Rubin registers for a version: major*100 + minor (1100 for 11.0), as in
    lsst/alert_packet's syncAllSchemasToRegistry.py and the schemas' own "confluent:version"."""
    major, minor = parse_version(version)
    return major * 100 + minor


def template(record_schema: dict) -> dict:
    """A record with every field at a neutral value: null where allowed, else 0 / False / ''."""
    zero = {"int": 0, "long": 0, "float": 0.0, "double": 0.0, "boolean": False, "string": "", "bytes": b""}
    out = {}
    for field in record_schema["fields"]:
        kind = field["type"]
        if isinstance(kind, list):
            out[field["name"]] = False if kind == ["null", "boolean"] else None   # flags: set, and clear
        else:
            out[field["name"]] = zero.get(kind if isinstance(kind, str) else kind.get("type"))
    return out


def named(schema: dict, name: str) -> dict:
    """A named record type of a parsed schema, e.g. ('lsst.v11_0.diaSource')."""
    return schema["__named_schemas"][name]


_F32 = struct.Struct("<f")


def float_fields(record_schema: dict) -> list[str]:
    return [f["name"] for f in record_schema["fields"] if f["type"] == "float" or
            (isinstance(f["type"], list) and "float" in f["type"])]


def as_float32(record: dict, names: list[str]) -> dict:
    """Round a record's float fields as Avro will (so a dict equals its decoded message)."""
    for name in names:
        x = record.get(name)
        if x is not None:
            record[name] = _F32.unpack(_F32.pack(x))[0]
    return record


# -- Avro encoding ------------------------------------------------------------------------
def avro_long(n: int) -> bytes:
    """Avro's zig-zag varint encoding of a long (array block counts, container block sizes)."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class FlatEncoder:
    """Avro for one flat record type (fields of primitives or of [null, primitive] unions).

    fastavro resolves every union per value, which makes alert records (a hundred
    nullable fields) four times slower to write than plain ones. Avro writes a union as
    the branch number (an int) followed by the value, so for a given pattern of null
    fields an equivalent union-free schema (branch numbers as int fields with defaults,
    never present in the data) makes fastavro produce the very same bytes, faster."""

    def __init__(self, record_schema: dict):
        self.name = record_schema["name"]
        self.fields = [(f["name"], f["type"]) for f in record_schema["fields"]]
        for name, kind in self.fields:
            optional = isinstance(kind, list) and len(kind) == 2 and "null" in kind
            assert isinstance(kind, str) or (optional and all(isinstance(k, str) for k in kind)), \
                f"{self.name}.{name}: not a primitive or an optional primitive"
        self.nullable = [name for name, kind in self.fields if isinstance(kind, list)]
        # the nullable fields' values, always as a tuple (an itemgetter of one key is not)
        self._values = operator.itemgetter(*self.nullable, *self.nullable[:1]) if self.nullable else lambda r: ()
        self._schemas = {}

    def _schema(self, nulls: tuple[bool, ...]) -> dict:
        fields, null_of = [], dict(zip(self.nullable, nulls))
        for name, kind in self.fields:
            if isinstance(kind, str):
                fields.append({"name": name, "type": kind})
            elif null_of[name]:
                fields.append({"name": f"_null_{name}", "type": "int", "default": kind.index("null")})
            else:
                value = kind[1 - kind.index("null")]
                fields += [{"name": f"_branch_{name}", "type": "int", "default": kind.index(value)},
                           {"name": name, "type": value}]
        return parse_schema({"type": "record", "name": f"{self.name}_flat{len(self._schemas)}", "fields": fields},
                            named_schemas={})

    def encode(self, record: dict) -> bytes:
        nulls = tuple(map(operator.is_, self._values(record), itertools.repeat(None)))
        schema = self._schemas.get(nulls)
        if schema is None:
            schema = self._schemas[nulls] = self._schema(nulls)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, record)
        return buf.getvalue()


class Packer:
    """Avro body of an alert assembled from parts.

    The big records (the triggering candidate / diaSource, history entries, diaObject)
    go through `FlatEncoder`s and may arrive already encoded (history entries are
    encoded once and re-used by every later alert that carries them); runs of the
    remaining fields are encoded by fastavro with the alert's own field types."""

    def __init__(self, schema: dict, spliced: tuple[str, ...]):
        types = schema["__named_schemas"]
        record_of = lambda t: types[t] if isinstance(t, str) else t
        self.plan, self.encoders, run = [], {}, []
        for field in schema["fields"] + [None]:
            if field is not None and field["name"] not in spliced:
                run.append(field)
                continue
            if run:
                part = {"type": "record", "name": f"{schema['name']}_part{len(self.plan)}", "fields": run}
                self.plan.append(("run", parse_schema(part, named_schemas=dict(types))))
                run = []
            if field is None:
                break
            kind, name = field["type"], field["name"]
            if isinstance(kind, list):   # ["null", array of records] or ["null", record]
                assert kind[0] == "null" and len(kind) == 2, name
                inner = record_of(kind[1])
                if inner["type"] == "array":
                    self.plan.append(("array", name))
                    self.encoders[name] = FlatEncoder(record_of(inner["items"]))
                else:
                    self.plan.append(("optional", name))
                    self.encoders[name] = FlatEncoder(inner)
            else:
                self.plan.append(("record", name))
                self.encoders[name] = FlatEncoder(record_of(kind))

    def item(self, field: str, record: dict) -> bytes:
        """One record (or array item) of a spliced field, encoded."""
        return self.encoders[field].encode(record)

    def pack(self, record: dict) -> bytes:
        """Spliced fields may hold dicts or already encoded bytes (lists of them for arrays)."""
        buf = io.BytesIO()
        for step, *rest in self.plan:
            if step == "run":
                fastavro.schemaless_writer(buf, rest[0], record)
                continue
            name = rest[0]
            value, encode = record[name], self.encoders[name].encode
            if step == "record":
                buf.write(value if isinstance(value, bytes) else encode(value))
            elif value is None:
                buf.write(b"\x00")
            elif step == "optional":
                buf.write(b"\x02" + (value if isinstance(value, bytes) else encode(value)))
            else:
                items = [x if isinstance(x, bytes) else encode(x) for x in value]
                buf.write(b"\x02" + (avro_long(len(items)) + b"".join(items) if items else b"") + b"\x00")
        return buf.getvalue()


class Container:
    """Avro container files holding one record each, as ZTF sends on Kafka: the header
    (schema and sync marker) is written once by fastavro, then each file is that header,
    one block (record count, byte size, body) and the marker. The marker, random in real
    files, comes from the seed so that output is reproducible."""

    def __init__(self, schema: dict, seed_text: str):
        self.marker = hashlib.sha256(seed_text.encode()).digest()[:16]
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [], sync_marker=self.marker)
        self.header = buf.getvalue()

    def file(self, body: bytes) -> bytes:
        return b"".join((self.header, avro_long(1), avro_long(len(body)), body, self.marker))


def ut(jd: float) -> datetime.datetime:
    """UTC date and time of a Julian date."""
    return datetime.datetime(2000, 1, 1, 12) + datetime.timedelta(days=jd - 2451545.0)


def base26(n: int, width: int = 7) -> str:
    """``n`` in lowercase letters, 'a' = 0 (ZTF object names, asteroid designations)."""
    out = []
    for _ in range(width):
        n, r = divmod(n, 26)
        out.append(chr(97 + r))
    return "".join(reversed(out))


class SurveyStream:
    """A survey's alert stream: the simulation, read one detection (one alert) at a time.
    Subclasses format a `Detection` as a dict (``_alert``) or as Kafka bytes (``_message``)."""

    def __init__(self, survey: Survey, seed: int, n_objects: int | None, history_days: float, sky: str,
                 start_jd: float, forced: bool):
        self.seed = seed
        self.sim = Simulation(survey, seed, DEFAULT_OBJECTS if n_objects is None else n_objects,
                              history_days, sky, start_jd, forced)
        self._stream = self.sim.detections()

    def alerts(self, n: int) -> Iterator[dict]:
        """The next n alerts of the stream, as dicts valid against the survey's schema."""
        for d in itertools.islice(self._stream, n):
            yield self._alert(d)

    def messages(self, n: int) -> Iterator[bytes]:
        """The next n alerts of the stream, serialised as the survey sends them on Kafka."""
        for d in itertools.islice(self._stream, n):
            yield self._message(d)
