"""Ingest scales out on Kafka consumer groups; annotations arrive over Kafka."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from alertlab.core.kafka_client import client_config
from ingest_helpers import ALERTLAB, counts_for, events, replay, rows, ztf_expected

pytestmark = pytest.mark.services


def test_two_ingest_processes_in_one_group_share_a_partitioned_topic(fresh_alerts_db, topic, monkeypatch):
    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", f"{topic}-matches")
    admin = AdminClient(client_config())
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    env = {**os.environ, "ALERTLAB_INGEST_BATCH": "40"}
    cmd = [ALERTLAB, "ingest", "--kafka", topic, "--group", f"g-{topic}", "--until-idle", "6", "--quiet"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # both members hold partitions before the alerts arrive
        try:
            group = admin.describe_consumer_groups([f"g-{topic}"])[f"g-{topic}"].result(10)
            if len(group.members) == 2 and all(m.assignment.topic_partitions for m in group.members):
                break
        except KafkaException:  # the group coordinator is still loading
            pass
        time.sleep(0.5)
    replay(topic, keyed=True)
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    per_process = [int(re.search(r"(\d+) alerts \(", err).group(1)) for _, err in outs]
    assert sum(per_process) >= 561 and all(n > 0 for n in per_process), per_process  # both worked
    exp = ztf_expected()
    assert counts_for(exp["objects"]) == {"objects": len(exp["objects"]), "detections": len(exp["detections"]),
                                          "nondetections": len(exp["nondetections"]),
                                          "cutouts": 3 * len(exp["candidates"])}


def test_annotations_over_kafka_keep_one_current_row_and_history(fresh_alerts_db, topic, monkeypatch):
    from ingest_helpers import ingest

    monkeypatch.setenv("ALERTLAB_ANNOTATIONS_TOPIC", topic)
    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", f"{topic}-matches")
    monkeypatch.setenv("ALERTLAB_DEADLETTER_TOPIC", f"{topic}-dlq")
    producer = Producer(client_config())
    notes = [
        {"objectId": "ZTF23aaaaaaa", "annotator": "fink", "classification": "SN candidate",
         "classdict": {"SN": 0.7, "AGN": 0.1}, "updated": "2026-11-27T01:00:00Z", "version": "1"},
        {"objectId": "ZTF23aaaaaaa", "annotator": "fink", "classification": "SN Ia", "explanation": "spectrum",
         "updated": "2026-11-27T05:00:00Z", "version": "2", "url": "https://example.org/x"},
        {"objectId": "ZTF23aaaaaaa", "annotator": "fink", "classification": "old news",
         "updated": "2026-11-27T03:00:00Z"},   # arrives late: history only
        {"objectId": "ZTF23aaaaaaa", "annotator": "alerce", "classification": "SNIa"},
    ]
    for n in notes:
        producer.produce(topic, json.dumps(n).encode())
    producer.produce(topic, b"{not json")
    producer.produce(topic, json.dumps({"objectId": "x"}).encode())
    producer.flush(10)
    totals = ingest(topic)
    assert totals.annotations == 4 and totals.rejects == 2
    current = rows("SELECT annotator, classification, explanation, version, url FROM annotations "
                   "WHERE objectId='ZTF23aaaaaaa' ORDER BY annotator")
    assert current == [("alerce", "SNIa", None, None, None),
                       ("fink", "SN Ia", "spectrum", "2", "https://example.org/x")]
    assert rows("SELECT COUNT(*) FROM annotations_history WHERE objectId='ZTF23aaaaaaa'")[0][0] == 4
    reasons = [r[0] for r in rows("SELECT reason FROM ingest_rejects WHERE topic=%s ORDER BY kafka_offset", (topic,))]
    assert reasons[0].startswith("annotation is not JSON") and reasons[1] == "annotation lacks annotator, classification"
    got = [e for e in events(f"{topic}-matches", expect=4) if e["kind"] == "annotation"]
    assert sorted(e["id"] for e in got) == ["alerce", "fink", "fink", "fink"]
    # redelivery (a second group reading from the start) changes nothing
    ingest(topic, group=f"again-{topic}")
    assert rows("SELECT COUNT(*) FROM annotations_history WHERE objectId='ZTF23aaaaaaa'")[0][0] == 4


def _trickled(topic: str, count: int) -> list[bytes]:
    from alertlab.ingest import replay as replay_mod
    from ingest_helpers import ZTF_FILES

    return [m for path in ZTF_FILES[:count] for m in replay_mod.messages_of_file(Path(path).read_bytes())]


def _run_while_trickling(topic: str, runner, messages: list[bytes]):
    """Run ``runner`` until idle while ``messages`` arrive ten a second (the first before it subscribes), so
    each batch's successors arrive while it is stored. Returns the totals and the CPU time of the loop."""
    import threading

    from alertlab.ingest.runner import producer_config

    def trickle():
        producer = Producer(producer_config())
        for m in messages[1:]:
            producer.produce(topic, m)
            producer.flush(10)
            time.sleep(0.1)

    first = Producer(producer_config())  # the topic exists before the consumer subscribes
    first.produce(topic, messages[0])
    assert first.flush(30) == 0
    sender, on_assign = threading.Thread(target=trickle), runner._on_assign

    def assigned(consumer, partitions):  # the trickle starts once the consumer holds the partition
        on_assign(consumer, partitions)
        if sender.ident is None:  # not started yet (a later rebalance assigns again)
            sender.start()

    runner._on_assign = assigned
    cpu = time.thread_time()
    totals = runner.run()
    cpu = time.thread_time() - cpu
    sender.join()
    return totals, cpu


def test_waiting_for_a_slow_commit_leaves_the_core_to_the_commit(fresh_alerts_db, topic, monkeypatch):
    """While a batch commits (here: a database that takes 0.5 s), alerts that keep arriving wait for it without
    the consumer loop spinning: a busy loop held the GIL the commit thread needs after each database round trip,
    and at a paced 1,000 alerts/s cost the ingest about a sixth of its CPU and slowed every commit."""
    from alertlab.ingest.runner import KafkaIngest, build_pipeline

    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", f"{topic}-matches")
    pipeline = build_pipeline(match=False)
    write, slow = pipeline.write, []

    def slow_write(prepared):
        time.sleep(0.5)
        slow.append(len(prepared.alerts))
        return write(prepared)

    pipeline.write = slow_write
    messages = _trickled(topic, 30)
    started = time.monotonic()
    totals, cpu = _run_while_trickling(topic, KafkaIngest([topic], f"g-{topic}", until_idle=2.0, pipeline=pipeline),
                                       messages)
    wall = time.monotonic() - started
    assert totals.alerts == len(messages) and len(slow) >= 4, (totals.summary(), slow)
    # the loop (this thread) decodes 31 alerts and polls every 20 ms; spinning, it used most of the commits' time
    assert cpu < 0.15 * 0.5 * len(slow), f"the consumer loop used {cpu:.2f} s of CPU in {wall:.1f} s"


def test_a_batch_is_written_while_the_one_before_is_published_and_offsets_follow_in_order(
        fresh_alerts_db, topic, monkeypatch):
    """The next batch's rows are written while the previous batch's filters run and its events go out (each
    stage has a thread), yet a batch's offsets are committed only once its own events are published, and in
    the order the batches came: a crash replays every batch whose events may be missing."""
    from alertlab.ingest.runner import KafkaIngest, build_pipeline

    monkeypatch.setenv("ALERTLAB_MATCHES_TOPIC", f"{topic}-matches")
    pipeline = build_pipeline(match=False)
    write, publish, log = pipeline.write, pipeline.publish, []

    def logged_write(prepared):
        log.append(("write", prepared.stats, time.monotonic()))
        return write(prepared)

    def slow_publish(stored):  # events that take 0.4 s to go out
        log.append(("publish", stored.prepared.stats, time.monotonic()))
        time.sleep(0.4)
        stats = publish(stored)
        log.append(("published", stored.prepared.stats, time.monotonic()))
        return stats

    def committed(stats, batch, done):
        log.append(("offsets", stats, time.monotonic(), max(m.offset for m in batch)))

    pipeline.write, pipeline.publish = logged_write, slow_publish
    messages = _trickled(topic, 30)
    totals, _ = _run_while_trickling(
        topic, KafkaIngest([topic], f"g-{topic}", until_idle=2.0, pipeline=pipeline, on_batch=committed), messages)
    assert totals.alerts == len(messages)
    # batches are known by their stats object, which the log keeps alive (so no two share an id)
    when = {(kind, id(batch)): t for kind, batch, t, *_ in log}
    order = {kind: [id(batch) for k, batch, *_ in log if k == kind] for kind in ("write", "published", "offsets")}
    assert len(order["write"]) >= 4, log
    assert order["published"] == order["write"] and order["offsets"] == order["write"]  # every batch, in order
    assert all(when[("offsets", b)] >= when[("published", b)] for b in order["write"])
    offsets = [e[3] for e in log if e[0] == "offsets"]
    assert offsets == sorted(offsets)
    overlapped = [b for prev, b in zip(order["write"], order["write"][1:])
                  if when[("write", b)] < when[("published", prev)]]
    assert overlapped, "no batch was written while the one before it was published"
    candids = {a["candidate"]["candid"] for m in messages for a in fastavro.reader(io.BytesIO(m))}
    marked = rows("SELECT detectionId FROM detections WHERE has_alert=1 AND published=1")
    assert sorted(r[0] for r in marked) == sorted(candids)  # every alert stored and marked published
