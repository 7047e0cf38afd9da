"""Match events on the Kafka topic ``alertlab.matches`` (what the scheduler
triggers on): one JSON message per filter match, watchlist hit, area hit and
annotation arrival, keyed by objectId, published after the batch commits.

Delivery is at least once: consumers deduplicate on (kind, id, detectionId)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson


def now() -> str:
    """An ingest time as events carry it (UTC, milliseconds); a batch computes it once for all its events."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def build(kind: str, ident, objectId: str, detectionId, mjd, ingest_time: str | None = None, **details) -> dict:
    return {"kind": kind, "id": ident, "objectId": objectId, "detectionId": detectionId, "mjd": mjd,
            "ingest_time": ingest_time or now(), **details}


class EventPublisher:
    def __init__(self, producer, topic: str):
        self.producer = producer
        self.topic = topic

    def publish(self, events: list[dict]) -> None:
        dumps, produce, topic, option = orjson.dumps, self.producer.produce, self.topic, orjson.OPT_NON_STR_KEYS
        for event in events:
            value = dumps(event, default=str, option=option)
            while True:
                try:
                    produce(topic, value, event["objectId"])  # positional: the per-event cost is the call itself
                    break
                except BufferError:  # local queue full: let it drain
                    self.producer.poll(0.1)
