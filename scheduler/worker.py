"""`alertlab scheduler worker`: take queued runs from Kafka and execute them.

One Kafka consumer (group ``<ALERTLAB_RUNS_TOPIC>.workers``, so workers on
several machines share the topic's partitions) feeds a pool of
ALERTLAB_SCHEDULER_WORKERS threads, each executing one run at a time. While
every slot is busy the consumer pauses its partitions and keeps polling, so
a long run does not get the worker thrown out of the group.

A message's offset is committed once its run's row is final (or the run was
not ours to take); per partition the committed offset never passes a
message still in progress, so a worker killed mid-run has that message
redelivered, and the run's row decides what happens (it is claimed only when
queued; the dead worker's run is settled by ``ledger.reap``).

On SIGTERM (``alertlab scheduler down``) the worker stops taking runs, kills
the ones in progress and puts them back in the queue, so they start over on
the next worker instead of being lost."""

from __future__ import annotations

import logging
import queue as queue_mod
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from alertlab.core import settings
from alertlab.scheduler import execute as execute_mod
from alertlab.scheduler import ledger, notify, queue
from alertlab.scheduler.execute import Execution
from alertlab.core.kafka_client import client_config

log = logging.getLogger(__name__)
_instances = iter(range(1, 1 << 30))


class Worker:
    def __init__(self, slots: int | None = None):
        self.slots = slots or settings.get("ALERTLAB_SCHEDULER_WORKERS")
        self.worker = ledger.worker_id(next(_instances))
        self.stopping = threading.Event()
        self.done: queue_mod.Queue = queue_mod.Queue()
        self.inflight: dict[tuple[str, int], set[int]] = {}   # partition -> offsets in progress
        self.high: dict[tuple[str, int], int] = {}            # partition -> next offset after the last seen
        self.backlog: list = []
        self.busy = 0
        self.paused = False
        self.consumer: Consumer | None = None
        self.executed = 0
        self.ready = threading.Event()   # the consumer has its partitions
        self.on_ready = None             # called once when ready (the CLI records it for `up`)

    # -- one run -------------------------------------------------------------------------------

    def execute(self, run_id: int) -> None:
        run = ledger.claim(run_id, self.worker)
        if run is None:
            return  # someone else's, cancelled, or already done
        try:
            outcome = Execution(run, self.worker, self.stopping.is_set).run()
        except Exception as exc:
            log.exception("run %s failed inside the worker", run_id)
            outcome = None
            error = f"internal error of the scheduler worker: {type(exc).__name__}: {exc}"
        if outcome is not None and outcome.status == "requeue":
            ledger.requeue(run_id, self.worker, run["attempt"], "requeued: the worker was stopped during the run")
            return
        if outcome is not None and outcome.status == "gone":
            return  # cancelled by deletion, or settled by the reaper meanwhile
        if outcome is None:
            result = ledger.finish(run_id, self.worker, run["attempt"], "failed", error)
        else:
            result = ledger.finish(run_id, self.worker, run["attempt"], outcome.status, outcome.error,
                                   outcome.note, outcome.ipynb, outcome.html)
        self.executed += 1
        if result and not result["requeued"]:
            try:
                notify.run_finished(run, result["status"], outcome.error if outcome else error)
            except Exception:
                log.exception("notification of run %s failed", run_id)

    # -- the consumer loop ---------------------------------------------------------------------

    def _on_assign(self, consumer, partitions) -> None:
        self.ready.set()
        if self.paused:
            consumer.pause(partitions)

    def _on_revoke(self, consumer, partitions) -> None:
        for p in partitions:  # their messages are redelivered elsewhere; rows decide what runs
            self.inflight.pop((p.topic, p.partition), None)
            self.high.pop((p.topic, p.partition), None)

    def _take(self, msg) -> None:
        tp = (msg.topic(), msg.partition())
        self.inflight.setdefault(tp, set()).add(msg.offset())
        self.high[tp] = max(self.high.get(tp, 0), msg.offset() + 1)
        self.backlog.append(msg)

    def _start(self, pool: ThreadPoolExecutor) -> None:
        while self.backlog and self.busy < self.slots and not self.stopping.is_set():
            msg = self.backlog.pop(0)
            parsed = queue.parse(msg.value() or b"")
            self.busy += 1
            tp = (msg.topic(), msg.partition())
            pool.submit(self._guarded, parsed[0] if parsed else None, tp, msg.offset())

    def _guarded(self, run_id, tp, offset) -> None:
        try:
            if run_id is not None:
                self.execute(run_id)
        except Exception:
            log.exception("run %s: the worker could not record its outcome", run_id)
        finally:
            self.done.put((tp, offset))

    def _commit_done(self) -> None:
        commits = {}
        while True:
            try:
                tp, offset = self.done.get_nowait()
            except queue_mod.Empty:
                break
            self.busy -= 1
            pending = self.inflight.get(tp)
            if pending is None:
                continue  # the partition was revoked meanwhile
            pending.discard(offset)
            commits[tp] = min(pending) if pending else self.high[tp]
        if commits and self.consumer is not None:
            try:
                self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in commits.items()],
                                     asynchronous=False)
            except KafkaException as exc:  # a rebalance took the partition: its new owner re-reads
                log.info("commit after a rebalance failed (harmless): %s", exc)

    def _pause(self, pause: bool) -> None:
        if pause == self.paused or self.consumer is None:
            return
        assignment = self.consumer.assignment()
        if assignment:
            (self.consumer.pause if pause else self.consumer.resume)(assignment)
        self.paused = pause

    def run(self, until_idle: float | None = None) -> int:
        """Consume and execute until stopped (or ``until_idle`` seconds without work). Returns runs executed."""
        queue.ensure_topic()
        threading.Thread(target=execute_mod.warm_up, daemon=True, name="alertlab-warm-up").start()
        settled = ledger.reap(host=socket.gethostname())
        if settled:
            log.warning("settled runs left running by a dead worker on this host: %s", settled)
        self.consumer = Consumer({
            **client_config(), "group.id": queue.group(), "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
            "max.poll.interval.ms": 300000, "partition.assignment.strategy": "roundrobin", "log_level": 3,
            "fetch.wait.max.ms": 50,
        })
        self.consumer.subscribe([queue.topic()], on_assign=self._on_assign, on_revoke=self._on_revoke)
        idle_since = time.monotonic()
        pool = ThreadPoolExecutor(self.slots, thread_name_prefix="alertlab-run")
        try:
            while not self.stopping.is_set():
                self._commit_done()
                free = self.slots - self.busy - len(self.backlog)
                self._pause(free <= 0)
                if free > 0:
                    msgs = self.consumer.consume(num_messages=free, timeout=0.1)
                else:
                    msg = self.consumer.poll(0.1)
                    msgs = [msg] if msg is not None else []
                for m in msgs:
                    err = m.error()
                    if err is not None:
                        if err.code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART) \
                                and err.fatal():
                            raise KafkaException(err)
                        continue
                    self._take(m)
                self._start(pool)
                if self.on_ready is not None and self.ready.is_set():
                    self.on_ready()
                    self.on_ready = None
                if self.busy or self.backlog or not self.ready.is_set():
                    idle_since = time.monotonic()
                elif until_idle is not None and time.monotonic() - idle_since > until_idle:
                    break
        finally:
            self.stopping.set()  # runs in progress are killed and requeued
            pool.shutdown(wait=True)
            self._commit_done()
            self.consumer.close()
        return self.executed

    def stop(self, *_args) -> None:
        self.stopping.set()


def main() -> int:
    """The worker as a foreground process: SIGTERM and SIGINT stop it cleanly."""
    w = Worker()
    signal.signal(signal.SIGTERM, w.stop)
    signal.signal(signal.SIGINT, w.stop)
    log.info("scheduler worker %s: %d slots on %s", w.worker, w.slots, queue.topic())
    w.run()
    return 0
