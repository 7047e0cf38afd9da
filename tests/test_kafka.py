"""A produce → consume round trip on the real broker with confluent-kafka."""

import pytest
from confluent_kafka import Consumer, Producer


@pytest.mark.services
def test_produce_consume_round_trip(services, topic):
    producer = Producer({"bootstrap.servers": services["kafka"]})
    payloads = [f"alert-{i}".encode() for i in range(50)]
    for p in payloads:
        producer.produce(topic, p, key=p[-2:])
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": services["kafka"], "group.id": topic,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
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
