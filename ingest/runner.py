"""The long-running ingest loops: Kafka (a consumer group member) and files.

Kafka: messages are decoded as they arrive (``Pipeline.prepare``, CPU in this
thread). A batch then passes two stages, each in a thread of its own, so that
batches pass both strictly in order: the commit thread writes its rows and
objects (``Pipeline.write``, mostly waiting on MariaDB), and the publish
thread evaluates the filters on it, sends its events and marks it published
(``Pipeline.publish``) while the commit thread writes the next batch.

A batch goes to the commit thread when it is full (ALERTLAB_INGEST_BATCH),
when its oldest message has waited ALERTLAB_INGEST_FLUSH_MS, or as soon as the
commit thread is free again if its messages came while a batch was written:
under load, the batch is what arrived during one write, already decoded, and
it does not wait any longer than that (a lone alert on a quiet stream still
goes within the flush time). Only after a batch is published are its offsets
committed, in batch order. When a rebalance takes partitions away, the pending
batch is written, published and committed first, so two ingest processes in
one group share a topic with nothing lost or doubled."""

from __future__ import annotations

import collections
import gc
import glob
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from alertlab.core import db, settings
from alertlab.core.errors import AlertLabError
from alertlab.core.kafka_client import client_config
from alertlab.ingest.pipeline import BatchStats, Pipeline, Prepared, RawMessage


# how the consumer fetches: the broker answers once 1 MB (~13 alerts) is there or after 100 ms, not for every
# alert (at a paced 1,000 alerts/s a fetch per message cost the broker a fifth of the machine)
FETCH_CONFIG = {"fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760,
                "fetch.min.bytes": 1_048_576, "fetch.wait.max.ms": 100}
COMMIT_POLL_S = 0.02  # while a batch commits, how often the loop looks whether it is done
LATENCY_WINDOW = 100_000  # latencies kept for the summary: the latest alerts', so a months-long run stays small
GC_GEN0_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700); see settle_heap


def build_pipeline(producer=None, survey: str | None = None, match: bool = True) -> Pipeline:
    """A pipeline on the alert database with watchlist, area and filter matching."""
    engine = db.engine("alerts")
    watchlists = areas = filters = None
    if match:
        from alertlab.ingest.areas import AreaMatcher
        from alertlab.ingest.filters import FilterEvaluator
        from alertlab.ingest.watchlists import WatchlistMatcher

        watchlists, areas, filters = (WatchlistMatcher(engine, background=True), AreaMatcher(engine),
                                       FilterEvaluator(engine))
        watchlists.refresh(force=True)  # load the cone index now, not while the first batch waits
        areas.refresh(force=True)
    pipeline = Pipeline(engine, producer, survey=survey, watchlists=watchlists, areas=areas, filters=filters)
    pipeline.warm()  # e.g. 1,000 distinct filters take ~2 s to check: before the first batch, not in it
    return pipeline


def settle_heap() -> None:
    """Keep Python's garbage collector off what an ingest process holds for good, once it is built.

    A started ingest holds ~170,000 objects (its imports, the cone index, the filters), and a full collection
    walked them all: 90 ms here, about a dozen times in 15 s of paced input, stalling every thread of the
    process; with the young collections, 1.0-1.8 s of each process's 15 s went to the collector. Frozen, they
    are never walked again (``gc.freeze``), and young collections run every 20,000 allocations instead of 700:
    a batch's decoded alerts are freed by reference counting, not by the collector. Measured in paced bench
    runs: 0.2-0.4 s instead of 1.0-1.8 s per process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def producer_config() -> dict:
    return client_config(**{"linger.ms": 5, "acks": "all", "log_level": 3, "enable.idempotence": True,
                            "message.max.bytes": 10_000_000, "queue.buffering.max.kbytes": 1_048_576})


@dataclass
class Totals(BatchStats):
    """Sums of every batch's statistics, and the produce -> committed latency (seconds) of the latest
    LATENCY_WINDOW messages (a list of every one grew without bound, and sorting it for each progress
    update cost more with every batch)."""

    batches: int = 0
    started: float = field(default_factory=time.monotonic)
    window: int = 0  # latencies kept (0: LATENCY_WINDOW)
    latencies: collections.deque = field(init=False)

    def __post_init__(self) -> None:
        self.window = self.window or LATENCY_WINDOW
        self.latencies = collections.deque(maxlen=self.window)

    def add(self, s: BatchStats) -> None:
        self.batches += 1
        for f in fields(BatchStats):
            setattr(self, f.name, getattr(self, f.name) + getattr(s, f.name))

    def rate(self) -> float:
        return self.alerts / max(time.monotonic() - self.started, 1e-9)

    def summary(self) -> str:
        lat = ""
        if self.latencies:
            window = sorted(self.latencies)
            q = statistics.quantiles(window, n=20, method="inclusive") if len(window) > 1 else [window[0]] * 19
            lat = f", latency p50 {statistics.median(window):.2f}s p95 {q[18]:.2f}s"
            if len(window) == self.window:
                lat += f" (latest {self.window:,} alerts)"
        return (f"{self.alerts} alerts ({self.new_alerts} new) from {self.messages} messages, "
                f"{self.rejects} rejected, {self.annotations} annotations, {self.events} events, "
                f"{self.rate():.0f} alerts/s{lat}")


class KafkaIngest:
    def __init__(self, topics: list[str], group: str, until_idle: float | None = None, survey: str | None = None,
                 pipeline: Pipeline | None = None, progress=None, on_batch=None, latency_window: int = 0):
        self.topics = topics
        self.group = group
        self.until_idle = until_idle
        self.batch_size = settings.get("ALERTLAB_INGEST_BATCH")
        self.flush_s = settings.get("ALERTLAB_INGEST_FLUSH_MS") / 1000
        self.producer = Producer(producer_config())
        self.pipeline = pipeline or build_pipeline(self.producer, survey)
        if self.pipeline.producer is None:
            self.pipeline.producer = self.producer
        self.progress = progress
        self.on_batch = on_batch
        self.totals = Totals(window=latency_window)
        self.pending: list[RawMessage] = []
        self.prepared: Prepared | None = None   # the pending messages, decoded
        self._came_while_committing = False     # a pending message arrived while a batch committed
        self.stopping = False
        self.consumer: Consumer | None = None
        # two stages, one thread each, so batches pass through both strictly in order
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-commit")
        self._publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-publish")
        self._writing = None  # (future of the publish future, batch): the batch being written
        self._publishing: collections.deque = collections.deque()  # (future of BatchStats, batch), in order

    def _add(self, messages: list[RawMessage]) -> None:
        """Decode newly arrived messages now, while the commit thread works on the previous batch."""
        prepared = self.pipeline.prepare(messages)
        self.pending += messages
        if self.prepared is None:
            self.prepared = prepared
        else:
            self.prepared.extend(prepared)
        if self._writing is not None:
            self._came_while_committing = True

    def _submit(self) -> None:
        """Hand the pending batch (decoded) to the commit thread, once the batch before it is written."""
        if not self.pending:
            return
        self._written(wait=True)  # batches are written strictly in order
        while len(self._publishing) > 1:  # at most one more batch waits to be published than is publishing
            self._collect_one()
        batch, prepared = self.pending, self.prepared
        self.pending, self.prepared, self._came_while_committing = [], None, False
        self._writing = (self._committer.submit(self._write_then_publish, prepared), batch)

    def _write_then_publish(self, prepared: Prepared):
        """In the commit thread: write the batch, then queue its publishing in the publish thread (so the next
        batch's rows are written while this one's filters run and its events go out)."""
        return self._publisher.submit(self.pipeline.publish, self.pipeline.write(prepared))

    def _written(self, wait: bool) -> None:
        """Move the batch being written, once it is, to the batches being published."""
        if self._writing is None or (not wait and not self._writing[0].done()):
            return
        future, batch = self._writing
        self._writing = None
        self._publishing.append((future.result(), batch))  # a failed batch raises here: no offsets committed

    def _collect(self, wait: bool) -> None:
        """Commit the Kafka offsets of the batches whose events are published, in order (``wait``: of every
        batch in flight)."""
        self._written(wait)
        while self._publishing and (wait or self._publishing[0][0].done()):
            self._collect_one()

    def _collect_one(self) -> None:
        """Once the oldest batch's rows and events are stored, commit its Kafka offsets."""
        future, batch = self._publishing.popleft()
        stats = future.result()  # a failed batch raises here: its offsets are never committed
        last: dict[tuple[str, int], int] = {}
        for m in batch:
            last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)
        self.consumer.commit(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()],
                             asynchronous=False)
        done = time.time()
        self.totals.latencies.extend(done - m.created for m in batch)
        self.totals.add(stats)
        if self.on_batch:
            self.on_batch(stats, batch, done)
        if self.progress:
            self.progress(self.totals)

    def _busy(self) -> bool:
        return self._writing is not None or bool(self._publishing)

    def _on_revoke(self, consumer, partitions) -> None:
        self._submit()
        self._collect(wait=True)

    def _on_assign(self, consumer, partitions) -> None:
        self.assigned_at = time.monotonic()  # --until-idle counts from the first assignment

    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> Totals:
        self.consumer = Consumer(client_config(**{
            "group.id": self.group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            **FETCH_CONFIG,
            # a killed member's partitions move to the others within ~10 s
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 2000,
        }))
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        settle_heap()
        previous = signal.signal(signal.SIGTERM, self.stop) if _main_thread() else None
        started = last_message = time.monotonic()
        self.assigned_at = None
        first_pending = 0.0
        try:
            while not self.stopping:
                if self._busy():
                    # a batch is being written or published: look every COMMIT_POLL_S whether one is done (to send
                    # the next batch, or to commit offsets), never spin (a busy loop holds the GIL the commit and
                    # publish threads need after each database round trip)
                    wait = COMMIT_POLL_S
                else:
                    wait = self.flush_s if not self.pending else max(0.0, first_pending + self.flush_s - time.monotonic())
                asked = time.monotonic()
                room = self.batch_size - len(self.pending)
                if room > 0:
                    msgs = self.consumer.consume(num_messages=room, timeout=min(wait, 0.5))
                else:  # a full batch waits for the one being written
                    msgs = []
                    self._written(wait=True)
                now = time.monotonic()
                arrived = []
                for m in msgs:
                    err = m.error()
                    if err is not None:
                        if err.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                            continue
                        if err.fatal():
                            raise KafkaException(err)
                        continue
                    if not self.pending and not arrived:
                        first_pending = asked  # it may have arrived as soon as we asked: the flush clock runs
                    ts_type, ts = m.timestamp()
                    arrived.append(RawMessage(m.value() or b"", m.topic(), m.partition(), m.offset(),
                                              timestamp_ms=ts if ts_type else None,
                                              created=ts / 1000 if ts_type and ts > 0 else time.time()))
                    last_message = now
                if arrived:
                    self._add(arrived)  # before collecting: what came during a commit goes as soon as it ends
                self._collect(wait=False)
                if self.pending and self._writing is None and (
                        len(self.pending) >= self.batch_size or now - first_pending >= self.flush_s
                        or self._came_while_committing):
                    self._submit()
                if self.until_idle is not None and not self.pending and not self._busy():
                    since = max(last_message, self.assigned_at or started)
                    if now - since >= self.until_idle and (self.assigned_at or now - started >= 60):
                        break
            self._submit()
            self._collect(wait=True)
        finally:
            self._committer.shutdown(wait=True)  # first: its last task may queue one for the publisher
            self._publisher.shutdown(wait=True)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.consumer.close()
            self.producer.flush(30)
        return self.totals


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def expand(patterns: list[str]) -> list[str]:
    files = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern, recursive=True))
        files.extend(matched if matched else [pattern])
    return files


def ingest_files(paths: list[str], survey: str | None = None, pipeline: Pipeline | None = None,
                 progress=None, match: bool = True) -> Totals:
    """Avro container files (one or many alerts each) into the database, in batches.

    With Kafka configured, match events and dead letters are published as for a stream."""
    producer = Producer(producer_config()) if _kafka_configured() else None
    pipeline = pipeline or build_pipeline(producer, survey, match=match)
    settle_heap()
    totals = Totals()
    batch: list[RawMessage] = []
    size = settings.get("ALERTLAB_INGEST_BATCH")
    for path in paths:
        with open(path, "rb") as fh:
            batch.append(RawMessage(fh.read(), source=path))
        if len(batch) >= size:
            totals.add(pipeline.process(batch))
            if progress:
                progress(totals, len(batch))
            batch = []
    if batch:
        totals.add(pipeline.process(batch))
        if progress:
            progress(totals, len(batch))
    return totals


def _kafka_configured() -> bool:
    try:
        client_config()
        return True
    except AlertLabError:
        return False
