"""POST /api/v1/annotations: annotators (classifiers, brokers, people) add their
classification of objects, one or a batch at a time.

Who may write as annotator ``NAME``: the members of the hub group
``annotator:NAME`` (and hub admins). An admin grants it on the hub's admin page
(Groups → add the group, add the user), with the hub's REST API
(``POST /hub/api/groups/annotator:NAME/users``), or for a new account with
``alertlab hub adduser USER --group annotator:NAME``. The annotations are
stored exactly as the ingest stores those pushed on Kafka
(``alertlab.ingest.annotations``: the current one per object and annotator,
and every version in the history), and an ``annotation`` match event is
published on $ALERTLAB_MATCHES_TOPIC as the ingest does."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from alertlab.api.auth import Forbidden, HubUser
from alertlab.api.matches import kafka_config
from alertlab.api.models import AUTH_ERRORS, errors
from alertlab.api.ratelimit import caller
from alertlab.core import db, settings
from alertlab.ingest.decode import DecodeError

log = logging.getLogger(__name__)
router = APIRouter(tags=["annotations"])

GROUP_PREFIX = "annotator:"
MAX_BATCH = 10_000


class AnnotationIn(BaseModel):
    objectId: str = Field(min_length=1, max_length=32)
    annotator: str = Field(min_length=1, max_length=64, description="Your annotator name (hub group annotator:NAME)")
    classification: str = Field(min_length=1, max_length=128)
    explanation: str | None = Field(None, max_length=60000)
    classdict: dict[str, Any] | list | None = Field(None, description="Class probabilities or anything, as JSON")
    url: str | None = Field(None, max_length=1024)
    version: str | None = Field(None, max_length=64)


class AnnotationBatch(BaseModel):
    annotations: list[AnnotationIn] = Field(min_length=1, max_length=MAX_BATCH)


class Stored(BaseModel):
    stored: int = Field(description="Annotations stored")
    published: int = Field(description="Annotation events published on Kafka")


def group_for(annotator: str) -> str:
    """The hub group whose members may write as this annotator."""
    return GROUP_PREFIX + annotator


def may_annotate(user: HubUser, annotator: str) -> bool:
    return user.admin or group_for(annotator) in user.groups


def _producer(app):
    if getattr(app.state, "producer", None) is None:
        from confluent_kafka import Producer

        app.state.producer = Producer(kafka_config(**{"linger.ms": 5, "acks": "all", "log_level": 3}))
    return app.state.producer


def _store_and_publish(app, items: list[AnnotationIn]) -> dict:
    from alertlab.ingest import annotations as ingest_annotations
    from alertlab.ingest import events

    # the ingest's own parser: same truncation, same time stamp rules
    rows = [ingest_annotations.parse(json.dumps(item.model_dump(exclude_none=True)).encode()) for item in items]
    with db.engine("alerts").begin() as conn:
        ingest_annotations.store(conn, rows)
    published = 0
    try:
        producer = _producer(app)
        topic = settings.get("ALERTLAB_MATCHES_TOPIC")
        publisher = events.EventPublisher(producer, topic)
        publisher.publish([events.build("annotation", r["annotator"], r["objectId"], None, None,
                                        classification=r["classification"]) for r in rows])
        undelivered = producer.flush(10)
        published = len(rows) - undelivered
    except Exception as exc:  # noqa: BLE001 - stored is stored; the event is best effort, and said so
        log.warning("annotation events not published: %s", exc)
    return {"stored": len(rows), "published": max(0, published)}


@router.post("/annotations", response_model=Stored, status_code=201, responses=errors(*AUTH_ERRORS, 422, 503))
async def post_annotations(body: AnnotationIn | AnnotationBatch, request: Request, user: HubUser = Depends(caller)):
    """Store one annotation, or a batch (`{"annotations": [...]}`, up to 10,000). You must hold every
    annotator name used: be a member of the hub group `annotator:NAME`."""
    items = body.annotations if isinstance(body, AnnotationBatch) else [body]
    refused = sorted({i.annotator for i in items if not may_annotate(user, i.annotator)})
    if refused:
        raise Forbidden(f"you may not write annotations as {', '.join(refused)}: an admin must add you to the hub "
                        f"group {', '.join(group_for(a) for a in refused)}")
    try:
        return await run_in_threadpool(_store_and_publish, request.app, items)
    except DecodeError as exc:  # the ingest parser's verdict
        raise HTTPException(422, str(exc)) from None
