"""Avro bodies to records, with a decoder compiled once per writer schema.

Decoding is the largest single cost of ingest (a ZTF alert is ~100 fields plus
~30 history records of ~50 fields each). cavro decodes the same bytes to the
same dicts about 2.8 times faster than fastavro (bench/ingest.py prints both);
fastavro stays the reference: it reads a schema cavro does not accept, and
tests compare the two on every real alert and LSST sample.

A decoder is built once per schema text (ZTF messages embed their writer
schema; LSST schemas come by id), kept in a small LRU cache."""

from __future__ import annotations

import io
import json
import threading
from collections import OrderedDict

import fastavro

try:
    import cavro
except ImportError:  # the reference decoder still works, slower
    cavro = None

_CACHE_SIZE = 64


class Decoder:
    """Reads ``count`` records of one writer schema from a buffer (``accelerate=False``: fastavro only, as
    the bench's baseline)."""

    def __init__(self, schema: dict | str | bytes, accelerate: bool = True):
        parsed = json.loads(schema) if isinstance(schema, (str, bytes)) else _plain(schema)
        self.fastavro_schema = fastavro.parse_schema(parsed)
        self._cavro = _cavro_schema(parsed) if accelerate else None

    def read(self, buf: bytes, count: int = 1) -> list:
        if self._cavro is not None:
            reader = cavro.MemoryReader(buf)
            return [self._cavro.binary_read(reader) for _ in range(count)]
        fo = io.BytesIO(buf)
        return [fastavro.schemaless_reader(fo, self.fastavro_schema, None) for _ in range(count)]

    @property
    def accelerated(self) -> bool:
        return self._cavro is not None


def _cavro_schema(parsed):
    if cavro is None:
        return None
    try:
        return cavro.Schema(json.dumps(parsed), options=cavro.DEFAULT_OPTIONS.replace(record_decodes_to_dict=True))
    except Exception:  # a schema cavro refuses (its rules are stricter in places): fastavro reads it
        return None


def _plain(schema):
    """A fastavro-parsed schema without fastavro's private keys, as plain Avro JSON."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


_decoders: OrderedDict = OrderedDict()
_lock = threading.Lock()


_last: tuple = (None, None, None)  # (schema text, accelerate, decoder) of the previous call


def decoder(schema_text: bytes | str, accelerate: bool = True) -> Decoder:
    """The cached decoder of a writer schema given as JSON text."""
    if isinstance(schema_text, str):
        schema_text = schema_text.encode()  # one cache entry whether the text came as str or bytes
    global _last
    last_text, last_accelerate, last_decoder = _last
    # a stream repeats one schema: comparing ~20 KB of text with the previous one is cheaper than hashing it
    if accelerate == last_accelerate and schema_text == last_text:
        return last_decoder
    key = (schema_text, accelerate)
    with _lock:
        found = _decoders.get(key)
        if found is not None:
            _decoders.move_to_end(key)
            _last = (schema_text, accelerate, found)
            return found
    made = Decoder(schema_text, accelerate)
    with _lock:
        _decoders[key] = made
        while len(_decoders) > _CACHE_SIZE:
            _decoders.popitem(last=False)
    _last = (schema_text, accelerate, made)
    return made
