"""One ingest batch, from raw messages to committed rows and published events.

Order matters for "loses and doubles nothing":
1. decode every message; unreadable ones become rejects (never stop the stream);
2. ``write``: the database transactions of ``store`` (alert rows, watchlist/area
   hits and reject rows; then the recomputed objects), and annotations;
3. ``publish``: evaluate user filters on the objects the batch's new alerts touched;
4. publish match events and dead letters to Kafka and wait for delivery;
5. mark the alerts published.
The caller commits Kafka offsets only after ``publish`` returns, so a crash
anywhere replays the batch: the database ignores what it has, and only events
not yet marked published go out again. The Kafka runner writes the next batch
(step 2) while steps 3 to 5 of this one run: a redelivered alert in the very
next batch may then emit its events twice (delivery is at least once)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from alertlab.core import settings
from alertlab.ingest import annotations as annotations_mod
from alertlab.ingest import events as events_mod
from alertlab.ingest.decode import DecodeError, decode, to_rows
from alertlab.ingest.store import BatchResult, Reject, Store, retrying


@dataclass
class RawMessage:
    value: bytes
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    source: str | None = None        # a file path for file ingest
    timestamp_ms: int | None = None
    created: float = field(default_factory=time.time)   # produce time when known (for latency)


@dataclass
class BatchStats:
    messages: int = 0
    alerts: int = 0
    new_alerts: int = 0
    rejects: int = 0
    annotations: int = 0
    rows: int = 0
    events: int = 0
    filter_matches: int = 0
    seconds: float = 0.0


@dataclass
class Prepared:
    """A decoded batch, ready to commit."""
    stats: BatchStats
    alerts: list = field(default_factory=list)
    rejects: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def extend(self, more: "Prepared") -> None:
        """Add the messages decoded in ``more`` (the Kafka runner decodes messages as they arrive)."""
        self.alerts += more.alerts
        self.rejects += more.rejects
        self.notes += more.notes
        for name in ("messages", "alerts", "rejects", "annotations", "seconds"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(more.stats, name))


@dataclass
class Stored:
    """A batch whose rows are committed and whose events are not published yet."""
    prepared: Prepared
    result: BatchResult


class Pipeline:
    def __init__(self, engine, producer=None, survey: str | None = None, watchlists=None, areas=None,
                 filters=None):
        self.store = Store(engine, watchlists=watchlists, areas=areas)
        self.engine = engine
        self.producer = producer
        self.survey = survey
        self.filters = filters
        self.annotation_topic = settings.get("ALERTLAB_ANNOTATIONS_TOPIC")
        self.matches_topic = settings.get("ALERTLAB_MATCHES_TOPIC")

    def warm(self) -> None:
        """Open now what a batch uses (the store's connections, the filters' session and batch table), so that
        the first batch does not wait for them: a fresh ingest already starts behind the stream (its first fetch,
        and a fresh stream's heaviest batches), and at full rate it catches up slowly."""
        self.store.warm()
        if self.filters is not None:
            self.filters.warm()

    def process(self, messages: list[RawMessage]) -> BatchStats:
        return self.commit(self.prepare(messages))

    def prepare(self, messages: list[RawMessage]) -> "Prepared":
        """Decode (CPU only, no I/O): the Kafka runner prepares the next batch while this one commits."""
        started = time.monotonic()
        prepared = Prepared(stats=BatchStats(messages=len(messages)))
        for msg in messages:
            try:
                if msg.topic is not None and msg.topic == self.annotation_topic:
                    prepared.notes.append(annotations_mod.parse(msg.value, msg.timestamp_ms))
                    continue
                for alert in decode(msg.value, self.survey):
                    prepared.alerts.append(to_rows(alert))
            except DecodeError as exc:
                prepared.rejects.append(Reject(exc.reason, msg.value, msg.topic, msg.partition, msg.offset, msg.source))
        stats = prepared.stats
        stats.alerts, stats.rejects, stats.annotations = len(prepared.alerts), len(prepared.rejects), len(prepared.notes)
        stats.seconds = time.monotonic() - started
        return prepared

    def commit(self, prepared: "Prepared") -> BatchStats:
        """Store, match, publish, mark published: steps 2 to 5 of the module docstring."""
        return self.publish(self.write(prepared))

    def write(self, prepared: "Prepared") -> "Stored":
        """Step 2: the batch's rows, objects and annotations, committed. The Kafka runner writes the next batch
        while this one's events are published (``publish``, in a thread of its own)."""
        started = time.monotonic()
        stats, notes = prepared.stats, prepared.notes
        result = self.store.write(prepared.alerts, prepared.rejects)
        if notes:
            def store_notes():
                with self.engine.begin() as conn:
                    annotations_mod.store(conn, notes)

            retrying(store_notes)
        stats.new_alerts, stats.rows = len(result.alerts), result.rows + len(notes)
        stats.seconds += time.monotonic() - started
        return Stored(prepared, result)

    def publish(self, stored: "Stored") -> BatchStats:
        """Steps 3 to 5 for a stored batch: filters, match events and dead letters delivered, alerts marked
        published. Only then may the batch's Kafka offsets be committed."""
        started = time.monotonic()
        stats, result = stored.prepared.stats, stored.result
        events, stats.filter_matches = self._events(result, stored.prepared.notes)
        if self.producer is not None:
            events_mod.EventPublisher(self.producer, self.matches_topic).publish_encoded(events)
            self._dead_letters(stored.prepared.rejects)
            undelivered = self.producer.flush(30)
            if undelivered:
                raise RuntimeError(f"{undelivered} events not delivered to Kafka; the batch will be retried")
        stats.events = len(events)
        self.store.mark_published([a.detectionId for a in result.alerts])
        stats.seconds += time.monotonic() - started
        return stats

    def _events(self, result, notes: list[dict]) -> tuple[list[tuple[bytes, str]], int]:
        """The batch's match events, encoded for Kafka, and how many are filter matches."""
        build, encode, now = events_mod.build, events_mod.encode, events_mod.now()
        events = [encode(build("watchlist", h["watchlist_id"], h["objectId"], h["detectionId"], h["mjd"], now,
                               cone_id=h["cone_id"], name=h["name"], arcsec=h["arcsec"]))
                  for h in result.watchlist_hits]
        events += [encode(build("area", h["area_id"], h["objectId"], h["detectionId"], h["mjd"], now))
                   for h in result.area_hits]
        events += [encode(build("annotation", n["annotator"], n["objectId"], None, None, now,
                                classification=n["classification"])) for n in notes]
        matches = 0
        if self.filters is not None and result.alerts:
            latest = {}
            for a in result.alerts:
                if a.objectId not in latest or a.mjd > latest[a.objectId].mjd:
                    latest[a.objectId] = a
            rows = [o for o in result.objects if o["objectId"] in latest]
            found = self.filters.evaluate(rows)
            matches = len(found)
            events += events_mod.filter_events(found, latest, now)
        return events, matches

    def _dead_letters(self, rejects: list[Reject]) -> None:
        topic = settings.get("ALERTLAB_DEADLETTER_TOPIC")
        for r in rejects:
            headers = [("reason", r.reason.encode()[:1000])]
            if r.topic is not None:
                headers += [("topic", r.topic.encode()), ("partition", str(r.partition).encode()),
                            ("offset", str(r.offset).encode())]
            if r.source:
                headers.append(("source", r.source.encode()))
            while True:
                try:
                    self.producer.produce(topic, r.data, headers=headers)
                    break
                except BufferError:
                    self.producer.poll(0.1)
