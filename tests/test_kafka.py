"""A produce → consume round trip on the real broker with confluent-kafka."""

import pytest
from confluent_kafka import Consumer, Producer

from alertlab.core.kafka_client import client_config


@pytest.mark.services
def test_produce_consume_round_trip(services, topic):
    producer = Producer(client_config())
    payloads = [f"alert-{i}".encode() for i in range(50)]
    for p in payloads:
        producer.produce(topic, p, key=p[-2:])
    assert producer.flush(30) == 0
    consumer = Consumer(client_config(**{"group.id": topic, "auto.offset.reset": "earliest",
                                         "enable.auto.commit": False}))
    consumer.subscribe([topic])
    got = []
    try:
        for _ in range(60):
            for msg in consumer.consume(100, timeout=1.0):
                assert msg.error() is None, msg.error()
                got.append(msg.value())
            if len(got) >= len(payloads):
                break
    finally:
        consumer.close()
    assert got == payloads


@pytest.mark.services
def test_broker_refuses_clients_without_the_password(services, topic):
    """Other local accounts (users' notebooks) cannot read or inject alerts."""
    for conf in ({"bootstrap.servers": services["kafka"]},
                 client_config(**{"sasl.password": "wrong"})):
        producer = Producer({**conf, "message.timeout.ms": 3000, "log_level": 0})
        outcome = []
        producer.produce(topic, b"injected", on_delivery=lambda err, msg: outcome.append(err))
        producer.flush(10)
        assert len(outcome) == 1 and outcome[0] is not None  # not delivered
    consumer = Consumer(client_config(**{"group.id": topic, "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    assert [m for m in consumer.consume(10, timeout=3) if m.error() is None] == []
    consumer.close()
