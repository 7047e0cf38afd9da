"""Reading one filter's (watchlist's, area's) match events from Kafka, for the
API's long-poll endpoint.

The ingest publishes every match on ``$ALERTLAB_MATCHES_TOPIC`` (JSON, see
docs/schema.md). A caller asks for the events of one resource after a
*cursor* (the next offset of each partition, as ``"partition:offset,..."``;
empty: from the beginning; ``latest``: from now on). Each request uses a
consumer of its own with explicitly assigned partitions (no consumer group,
nothing committed), reads from the cursor, keeps the events of that resource
(``kind`` and ``id``) and returns them with the cursor after the last message
read. It waits up to ``wait`` seconds for a first event, then returns what
has arrived (long polling), so a client loop costs one request per ``wait``
seconds when nothing happens.

Every request reads all events of the topic after its cursor and filters them
here: fine for a broker's match rate (thousands per hour); a topic per filter
would be the next step if that changes."""

from __future__ import annotations

import json
import re
import time
import uuid

from alertlab.core import settings
from alertlab.core.errors import AlertLabError, ConfigError, ServiceError
from alertlab.core.kafka_client import client_config

MAX_WAIT = 30.0
MAX_EVENTS = 1000
SCAN_LIMIT = 50_000  # messages read per request at most: the cursor then moves on
_CURSOR = re.compile(r"^(\d{1,5}:\d{1,19})(,\d{1,5}:\d{1,19})*$")
CURSOR_PATTERN = r"^(latest|\d{1,5}:\d{1,19}(,\d{1,5}:\d{1,19})*)?$"
"""What a cursor parameter looks like (also checked by ``parse_cursor``)."""


class BadCursor(AlertLabError):
    """A cursor that was not made by this endpoint."""


def kafka_config(**extra) -> dict:
    """``core.kafka_client.client_config``, or ServiceError (503) when there is no broker to talk to."""
    try:
        return client_config(**extra)
    except ConfigError as exc:
        raise ServiceError("kafka", str(exc)) from None


def parse_cursor(cursor: str) -> dict[int, int]:
    if not cursor:
        return {}
    if not _CURSOR.match(cursor):
        raise BadCursor("the cursor is not one this API gave out: pass back the `cursor` of the previous answer, "
                        "'latest' or nothing")
    return {int(p): int(o) for p, o in (part.split(":") for part in cursor.split(","))}


def format_cursor(positions: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def read(kind: str, ident, cursor: str | None, wait: float, max_events: int) -> tuple[list[dict], str]:
    """The events of ``kind``/``ident`` after ``cursor`` (see the module docstring), and the next cursor."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    topic = settings.get("ALERTLAB_MATCHES_TOPIC")
    latest = cursor in (None, "latest")
    positions = {} if latest else parse_cursor(cursor)
    consumer = Consumer(kafka_config(**{"group.id": f"alertlab-api-{uuid.uuid4().hex}", "enable.auto.commit": False,
                                        "enable.partition.eof": True, "auto.offset.reset": "earliest",
                                        "log_level": 3, "socket.timeout.ms": 10000}))
    try:
        try:
            meta = consumer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            raise ServiceError("kafka", f"cannot read {topic}: {exc}") from None
        found = meta.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return [], "" if latest else format_cursor(positions)  # no match yet: read from its beginning later
        partitions = sorted(found.partitions)
        if latest:
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                positions[p] = high
        else:
            for p in partitions:
                positions.setdefault(p, 0)
        consumer.assign([TopicPartition(topic, p, positions[p]) for p in partitions])
        events: list[dict] = []
        scanned = 0
        deadline = time.monotonic() + max(0.0, min(wait, MAX_WAIT))
        while len(events) < max_events and scanned < SCAN_LIMIT:
            remaining = deadline - time.monotonic()
            batch = consumer.consume(num_messages=500, timeout=max(0.05, min(0.5, remaining)))
            data = 0
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise ServiceError("kafka", f"reading {topic}: {err.str()}")
                data += 1
                scanned += 1
                positions[msg.partition()] = msg.offset() + 1
                try:
                    event = json.loads(msg.value())
                except (TypeError, ValueError):
                    continue
                if (isinstance(event, dict) and event.get("kind") == kind and str(event.get("id")) == str(ident)
                        and len(events) < max_events):
                    events.append(event)
                elif len(events) >= max_events:
                    positions[msg.partition()] = msg.offset()  # not returned: read it next time
                    break
            if (events and data == 0) or remaining <= 0:
                break
        return events, format_cursor(positions)
    finally:
        consumer.close()
