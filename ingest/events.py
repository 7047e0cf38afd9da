"""Match events on the Kafka topic ``alertlab.matches`` (what the scheduler
triggers on): one JSON message per filter match, watchlist hit, area hit and
annotation arrival, keyed by objectId, published after the batch commits.

Delivery is at least once: consumers deduplicate on (kind, id, detectionId)."""

from __future__ import annotations

import json
from datetime import datetime, timezone


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def build(kind: str, ident, objectId: str, detectionId, mjd, **details) -> dict:
    return {"kind": kind, "id": ident, "objectId": objectId, "detectionId": detectionId, "mjd": mjd,
            "ingest_time": _now(), **details}


class EventPublisher:
    def __init__(self, producer, topic: str):
        self.producer = producer
        self.topic = topic

    def publish(self, events: list[dict]) -> None:
        for event in events:
            self._produce(json.dumps(event, default=str).encode(), event["objectId"].encode())

    def _produce(self, value: bytes, key: bytes) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value, key=key)
                return
            except BufferError:  # local queue full: let it drain
                self.producer.poll(0.1)
