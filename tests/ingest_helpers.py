"""Shared helpers of the ingest tests: the real ZTF alerts, what the files hold,
and running the ingest against a topic."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, Producer

from alertlab.core import db
from alertlab.core.kafka_client import client_config
from conftest import SHARED_DATA

ZTF_FILES = sorted(glob.glob(str(SHARED_DATA / "ztf" / "alerts" / "*.avro")))
ALERTLAB = str(Path(sys.executable).with_name("alertlab"))


@lru_cache(maxsize=1)
def ztf_expected() -> dict:
    """Distinct objects, detections and non-detections in the shared ZTF files, and each alert's candidate."""
    assert len(ZTF_FILES) == 561, f"expected the 561 shared ZTF alerts in {SHARED_DATA}"
    objects, detections, nondet, candidates = set(), set(), set(), {}
    for path in ZTF_FILES:
        with open(path, "rb") as fh:
            for a in fastavro.reader(fh):
                objects.add(a["objectId"])
                c = a["candidate"]
                detections.add(c["candid"])
                candidates[c["candid"]] = (a["objectId"], c)
                for p in a["prv_candidates"] or []:
                    if p["candid"] is not None:
                        detections.add(p["candid"])
                    else:
                        nondet.add((a["objectId"], p["jd"], p["fid"]))
    return {"objects": objects, "detections": detections, "nondetections": nondet, "candidates": candidates}


def replay(topic: str, files=ZTF_FILES, extra: list[bytes] = (), keyed: bool = False) -> None:
    from alertlab.ingest import replay as replay_mod
    from alertlab.ingest.runner import producer_config

    producer = Producer(producer_config())
    msgs = []
    for path in files:
        with open(path, "rb") as fh:
            msgs.extend(replay_mod.messages_of_file(fh.read()))
    if keyed:  # spread over partitions
        for i, m in enumerate([*msgs, *extra]):
            producer.produce(topic, m, key=str(i).encode())
            producer.poll(0)
        assert producer.flush(60) == 0
        return
    replay_mod.produce(producer, topic, [*msgs, *extra])


def ingest(topics, group=None, until_idle=2.0, **kw):
    from alertlab.ingest.runner import KafkaIngest

    topics = [topics] if isinstance(topics, str) else topics
    return KafkaIngest(topics, group or f"g-{topics[0]}", until_idle=until_idle, **kw).run()


def scalar(sql: str, params=()):
    with db.engine("alerts").connect() as conn:
        return conn.exec_driver_sql(sql, params).scalar()


def rows(sql: str, params=()):
    with db.engine("alerts").connect() as conn:
        return conn.exec_driver_sql(sql, params).fetchall()


def in_list(values) -> str:
    return ",".join("'%s'" % str(v).replace("'", "") for v in values)


def counts_for(objects) -> dict:
    ids = in_list(objects)
    return {
        "objects": scalar(f"SELECT COUNT(*) FROM objects WHERE objectId IN ({ids})"),
        "detections": scalar(f"SELECT COUNT(*) FROM detections WHERE objectId IN ({ids})"),
        "nondetections": scalar(f"SELECT COUNT(*) FROM nondetections WHERE objectId IN ({ids})"),
        "cutouts": scalar(f"SELECT COUNT(*) FROM cutouts c JOIN detections d USING (detectionId) "
                          f"WHERE d.objectId IN ({ids})"),
    }


def fingerprint(objects) -> dict:
    """Every stored row of these objects, keyed by table (the objects' `updated` included: it must not move)."""
    ids = in_list(objects)
    out = {}
    with db.engine("alerts").connect() as conn:
        for table, key in (("objects", "objectId"), ("detections", "detectionId"), ("nondetections", "objectId, mjd, band"),
                           ("forced_photometry", "objectId, mjd, band")):
            out[table] = conn.exec_driver_sql(
                f"SELECT * FROM {table} WHERE objectId IN ({ids}) ORDER BY {key}").fetchall()
    return out


def read_topic(topic: str, expect: int | None = None, timeout: float = 20.0) -> list:
    consumer = Consumer(client_config(**{"group.id": f"reader-{time.time()}", "auto.offset.reset": "earliest",
                                         "enable.auto.commit": False}))
    consumer.subscribe([topic])
    out, deadline, quiet_since = [], time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline:
            msgs = consumer.consume(500, timeout=0.5)
            good = [m for m in msgs if m.error() is None]
            out.extend(good)
            if expect is not None and len(out) >= expect:
                break
            if good:
                quiet_since = None
            elif out and expect is None:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 3:
                    break
    finally:
        consumer.close()
    return out


def events(topic: str, expect=None, timeout=20.0) -> list[dict]:
    return [json.loads(m.value()) for m in read_topic(topic, expect, timeout)]


def cli(*args, env=None, check=True, timeout=300):
    result = subprocess.run([ALERTLAB, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode:
        raise AssertionError(f"alertlab {' '.join(args)}: {result.stderr}")
    return result


def engine():
    return db.engine("alerts")

