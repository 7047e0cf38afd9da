"""The Kafka topic of queued runs (ALERTLAB_RUNS_TOPIC, `alertlab.runs`).

A message is only a pointer, ``{"run_id": N, "attempt": K}`` keyed by the run
id; the run's row in the `runs` table is the truth. Workers form the consumer
group ``<topic>.workers`` and claim a run by switching its row from queued to
running, so a message delivered twice (a republish after a crash, a
rebalance) never runs a notebook twice. The topic is created with several
partitions so that several workers share it."""

from __future__ import annotations

import json
import threading

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from alertlab.core import settings
from alertlab.core.errors import AlertLabError, ServiceError
from alertlab.core.kafka_client import client_config

PARTITIONS = 8
_producers: dict[str, Producer] = {}
_topics_made: set[tuple[str, str]] = set()
_lock = threading.Lock()


def topic() -> str:
    return settings.get("ALERTLAB_RUNS_TOPIC")


def group() -> str:
    """The workers' consumer group."""
    return f"{topic()}.workers"


def bootstrap() -> str:
    servers = settings.get("ALERTLAB_KAFKA")
    if not servers:
        raise AlertLabError("no Kafka: set ALERTLAB_KAFKA or run `eval \"$(alertlab services up)\"` first")
    return servers


def ensure_topic(name: str | None = None, partitions: int = PARTITIONS) -> str:
    """Create the topic with ``partitions`` partitions unless it exists (once per process)."""
    name = name or topic()
    servers = bootstrap()
    if (servers, name) in _topics_made:
        return name
    admin = AdminClient(client_config())
    existing = admin.list_topics(timeout=10).topics
    if name not in existing:
        future = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name]
        try:
            future.result(timeout=30)
        except Exception as exc:  # a concurrent creator won the race: fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise ServiceError("kafka", f"could not create the topic {name}: {exc}") from None
    _topics_made.add((servers, name))
    return name


def producer() -> Producer:
    servers = bootstrap()
    with _lock:
        if servers not in _producers:
            _producers[servers] = Producer({**client_config(), "acks": "all", "linger.ms": 0,
                                            "enable.idempotence": True, "log_level": 3})
        return _producers[servers]


def publish(runs: list[tuple[int, int]], timeout: float = 30) -> None:
    """Queue (run_id, attempt) pairs and wait until Kafka has them."""
    if not runs:
        return
    name = ensure_topic()
    p = producer()
    for run_id, attempt in runs:
        p.produce(name, json.dumps({"run_id": run_id, "attempt": attempt}).encode(), key=str(run_id).encode())
    if p.flush(timeout):
        raise ServiceError("kafka", f"runs not delivered to {name} within {timeout:.0f}s")


def parse(value: bytes) -> tuple[int, int] | None:
    """(run_id, attempt) of a message, or None when it is not one of ours."""
    try:
        data = json.loads(value)
        return int(data["run_id"]), int(data.get("attempt", 1))
    except (ValueError, KeyError, TypeError):
        return None
