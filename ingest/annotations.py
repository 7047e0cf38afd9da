"""Annotations pushed by annotators (classifiers, other brokers, people) on the
Kafka topic ``annotations`` as JSON, stored generically: one current row per
(objectId, annotator) in ``annotations``, every version in ``annotations_history``.

A message: {"objectId": "...", "annotator": "fink", "classification": "SN Ia",
"explanation": "...", "classdict": {...}, "url": "...", "version": "1.2",
"updated": "2026-11-28T01:02:03Z" (optional: the message's Kafka time otherwise)}."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy.engine import Connection

from alertlab.ingest.decode import DecodeError

REQUIRED = ("objectId", "annotator", "classification")
SQL_CURRENT = (
    "INSERT INTO annotations (objectId, annotator, classification, explanation, classdict, url, version, updated) "
    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s) ON DUPLICATE KEY UPDATE "
    "classification=IF(VALUES(updated)>=updated, VALUES(classification), classification), "
    "explanation=IF(VALUES(updated)>=updated, VALUES(explanation), explanation), "
    "classdict=IF(VALUES(updated)>=updated, VALUES(classdict), classdict), "
    "url=IF(VALUES(updated)>=updated, VALUES(url), url), "
    "version=IF(VALUES(updated)>=updated, VALUES(version), version), "
    "updated=GREATEST(updated, VALUES(updated))")
SQL_HISTORY = ("INSERT IGNORE INTO annotations_history (objectId, annotator, classification, explanation, classdict, "
               "url, version, updated) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)")


def parse(data: bytes, kafka_time_ms: int | None = None) -> dict:
    """An annotation dict from a message, or DecodeError saying what is wrong."""
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"annotation is not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise DecodeError("annotation must be a JSON object")
    missing = [k for k in REQUIRED if not msg.get(k)]
    if missing:
        raise DecodeError(f"annotation lacks {', '.join(missing)}")
    if msg.get("updated"):
        try:
            updated = datetime.fromisoformat(str(msg["updated"]).replace("Z", "+00:00"))
        except ValueError:
            raise DecodeError(f"annotation 'updated' is not an ISO time: {msg['updated']!r}") from None
    elif kafka_time_ms:
        updated = datetime.fromtimestamp(kafka_time_ms / 1000, tz=timezone.utc)
    else:
        updated = datetime.now(timezone.utc)
    if updated.tzinfo:
        updated = updated.astimezone(timezone.utc).replace(tzinfo=None)
    classdict = msg.get("classdict")
    return {
        "objectId": str(msg["objectId"])[:32], "annotator": str(msg["annotator"])[:64],
        "classification": str(msg["classification"])[:128], "explanation": msg.get("explanation"),
        "classdict": None if classdict is None else json.dumps(classdict),
        "url": msg.get("url"), "version": None if msg.get("version") is None else str(msg["version"])[:64],
        "updated": updated,
    }


def store(conn: Connection, annotations: list[dict]) -> None:
    cols = ("objectId", "annotator", "classification", "explanation", "classdict", "url", "version", "updated")
    rows = [tuple(a[c] for c in cols) for a in annotations]
    conn.exec_driver_sql(SQL_HISTORY, rows)
    conn.exec_driver_sql(SQL_CURRENT, rows)
