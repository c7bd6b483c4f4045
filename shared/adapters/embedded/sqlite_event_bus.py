"""SqliteEventBus: a durable Pub/Sub stand-in with worker threads, leases, backoff and dead letters.

It keeps Pub/Sub's promises and no more: every subscription gets each message at least
once, in no particular order; a handler that raises or outlives its ack deadline gets the
message again after an exponential backoff; after `max_attempts` the message goes to the
subscription's dead-letter topic. Messages survive a restart because they live in SQLite.
With a FaultInjector it also duplicates, fails, delays and reorders deliveries on purpose.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from shared.adapters.embedded.sqlite_support import ThreadLocalSqlite, backend_errors
from shared.config import EventBusSettings
from shared.faults import NO_DELIVERY_FAULTS, DeliveryFaults, FaultInjector
from shared.ports import EventBus

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    name TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    dead_letter_topic TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    data BLOB NOT NULL,
    attributes TEXT NOT NULL,
    published_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    message_id TEXT NOT NULL,
    subscription TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    last_error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (message_id, subscription)
);
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries (status, available_at);
"""

PENDING, ACKED, DEAD = "PENDING", "ACKED", "DEAD"


@dataclass(frozen=True)
class ReceivedMessage:
    """One delivery of a message to a subscription, as a push endpoint would receive it."""

    message_id: str
    topic: str
    subscription: str
    data: bytes
    attributes: dict[str, str]
    publish_time: float
    delivery_attempt: int


Handler = Callable[[ReceivedMessage], None]


@dataclass
class BusStats:
    """Counters since start, for benchmarks and the chaos report."""

    published: int = 0
    deliveries: int = 0
    redeliveries: int = 0
    duplicates: int = 0
    acked: int = 0
    failed: int = 0
    injected_failures: int = 0
    dead_lettered: int = 0
    handler_timeouts: int = 0
    workers_replaced: int = 0
    stale_outcomes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        """Increment counters by name."""
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        """The counters as a plain dict."""
        with self.lock:
            return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "lock"}


class InjectedFault(Exception):
    """A delivery failure the fault injector asked for."""


@dataclass
class _Worker:
    """One delivery thread; `busy_since` is set while it runs a handler."""

    index: int
    thread: threading.Thread | None = None
    busy_since: float | None = None
    abandoned: threading.Event = field(default_factory=threading.Event)


class SqliteEventBus(EventBus):
    """Durable topics and subscriptions in one SQLite file, delivered by a pool of threads.

    Each handler runs under a deadline (the ack deadline): a worker still busy past it is
    abandoned and replaced, its lease has expired so the message is delivered again, and
    whatever the late handler finally returns is ignored. A hung handler therefore never
    takes a worker away for good.
    """

    def __init__(self, path: Path, settings: EventBusSettings, faults: FaultInjector | None = None) -> None:
        self._db = ThreadLocalSqlite(path, _SCHEMA)
        self._settings = settings
        self._faults = faults
        self._handlers: dict[str, Handler] = {}
        self._wakeup = threading.Condition()
        self._stopping = threading.Event()
        self._workers: list[_Worker] = []
        self._abandoned: list[_Worker] = []
        self._workers_lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self._current = threading.local()
        self._spawned = 0
        self.stats = BusStats()

    # --- topology -------------------------------------------------------------------------
    def create_subscription(self, name: str, topic: str, dead_letter_topic: str | None = None) -> None:
        """Create (or update) a durable subscription; later publishes to `topic` reach it."""
        self._db.connection().execute(
            "INSERT INTO subscriptions (name, topic, dead_letter_topic) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET topic=excluded.topic, dead_letter_topic=excluded.dead_letter_topic",
            (name, topic, dead_letter_topic),
        )

    def subscribe(self, name: str, handler: Handler) -> None:
        """Attach the in-process handler that workers call for subscription `name`."""
        self._handlers[name] = handler

    # --- publishing -----------------------------------------------------------------------
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        with backend_errors(), self._transaction() as conn:
            message_id = self._insert_message(conn, topic, data, attributes or {})
        self._published()
        return message_id

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.write_transaction()

    @staticmethod
    def _insert_message(conn: sqlite3.Connection, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        """Store one message and a PENDING delivery per subscription of `topic` (inside the caller's transaction)."""
        message_id = uuid.uuid4().hex
        now = time.time()
        conn.execute(
            "INSERT INTO messages (message_id, topic, data, attributes, published_at) VALUES (?, ?, ?, ?, ?)",
            (message_id, topic, data, json.dumps(attributes), now),
        )
        conn.execute(
            "INSERT INTO deliveries (message_id, subscription, status, available_at, updated_at) "
            "SELECT ?, name, ?, ?, ? FROM subscriptions WHERE topic = ?",
            (message_id, PENDING, now, now, topic),
        )
        return message_id

    def _published(self) -> None:
        self.stats.add(published=1)
        with self._wakeup:
            self._wakeup.notify_all()

    # --- delivery -------------------------------------------------------------------------
    def start(self) -> None:
        """Recover the leases of a previous process, then start the workers (idempotent)."""
        with self._workers_lock:
            if self._workers:
                return
            self._stopping.clear()
            self.recover_leases()
            for _ in range(self._settings.workers):
                self._spawn_worker()
        self._supervisor = threading.Thread(target=self._supervise, name="event-bus-supervisor", daemon=True)
        self._supervisor.start()

    def recover_leases(self) -> int:
        """Make every delivery leased by a process that is gone deliverable now; returns how many.

        Only one process delivers from this file, so at start every lease is an orphan.
        """
        now = time.time()
        cursor = self._db.connection().execute(
            "UPDATE deliveries SET available_at=?, updated_at=? WHERE status=? AND available_at>?",
            (now, now, PENDING, now),
        )
        return int(cursor.rowcount)

    def _spawn_worker(self) -> None:
        worker = _Worker(index=self._spawned)
        self._spawned += 1
        worker.thread = threading.Thread(target=self._work, args=(worker,), name=f"event-bus-{worker.index}", daemon=True)
        self._workers.append(worker)
        worker.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers; deliveries in flight finish, unacked ones are redelivered later."""
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        with self._workers_lock:
            workers, self._workers = self._workers, []
            abandoned, self._abandoned = self._abandoned, []
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(timeout)
        for worker in abandoned:  # hung handlers: give them a moment, never wait for them
            if worker.thread is not None:
                worker.thread.join(0.1)
        if self._supervisor is not None:
            self._supervisor.join(timeout)
            self._supervisor = None

    def close(self) -> None:
        self.stop()
        self._db.close()

    def _supervise(self) -> None:
        deadline = self._settings.ack_deadline_seconds
        while not self._stopping.wait(min(1.0, deadline / 4)):
            now = time.monotonic()
            with self._workers_lock:
                for worker in list(self._workers):
                    busy_since = worker.busy_since
                    if busy_since is None or now - busy_since <= deadline:
                        continue
                    worker.abandoned.set()
                    self._workers.remove(worker)
                    self._abandoned.append(worker)
                    self._spawn_worker()
                    self.stats.add(handler_timeouts=1, workers_replaced=1)
                    logger.error("handler outlived its deadline; worker replaced", extra={"deadline_seconds": deadline})
                self._abandoned = [w for w in self._abandoned if w.thread is not None and w.thread.is_alive()]

    def _work(self, worker: _Worker) -> None:
        self._current.worker = worker
        while not self._stopping.is_set() and not worker.abandoned.is_set():
            try:
                delivered = self.deliver_one()
            except Exception:
                logger.exception("event bus worker failed to claim a delivery")
                delivered = False
            if not delivered:
                with self._wakeup:
                    self._wakeup.wait(self._settings.poll_interval_seconds)

    def deliver_one(self) -> bool:
        """Claim one ready delivery and run its handler (with any injected faults); False when nothing was ready."""
        claimed = self._claim()
        if claimed is None:
            return False
        message, subscription = claimed
        handler = self._handlers[subscription]
        faults = self._faults.delivery() if self._faults is not None else NO_DELIVERY_FAULTS
        self.stats.add(deliveries=1, redeliveries=int(message.delivery_attempt > 1))
        worker: _Worker | None = getattr(self._current, "worker", None)
        if worker is not None:
            worker.busy_since = time.monotonic()
        try:
            self._run(message, handler, faults)
        finally:
            if worker is not None:
                worker.busy_since = None
        return True

    def _run(self, message: ReceivedMessage, handler: Handler, faults: DeliveryFaults) -> None:
        if faults.delay_seconds:
            time.sleep(faults.delay_seconds)
        if faults.fail_before:
            self.stats.add(injected_failures=1)
            self._nack(message, InjectedFault("injected failure before the handler ran"))
            return
        twin = None
        if faults.duplicate:
            twin = threading.Thread(target=self._run_twin, args=(message, handler), name="event-bus-duplicate", daemon=True)
            twin.start()
        try:
            handler(message)
        except Exception as error:  # the handler's failure is the message's, never the worker's
            self._nack(message, error)
        else:
            if faults.fail_after:
                self.stats.add(injected_failures=1)
                self._nack(message, InjectedFault("injected loss of the ack after the handler ran"))
            elif self._settle(message, "status=?", (ACKED,)):
                self.stats.add(acked=1)
        finally:
            if twin is not None:
                twin.join(self._settings.ack_deadline_seconds)

    def _run_twin(self, message: ReceivedMessage, handler: Handler) -> None:
        """A duplicate delivery, concurrent with the first; like Pub/Sub, its ack counts for nothing."""
        self.stats.add(duplicates=1, deliveries=1)
        try:
            handler(message)
        except Exception as error:
            logger.info("duplicate delivery failed", extra={"subscription": message.subscription, "reason": str(error)[:200]})

    def _claim(self) -> tuple[ReceivedMessage, str] | None:
        if not self._handlers:
            return None
        names = list(self._handlers)
        placeholders = ",".join("?" * len(names))
        now = time.time()
        conn = self._db.connection()
        # A plain read first: idle workers must not take the write lock every poll.
        ready = conn.execute(
            f"SELECT 1 FROM deliveries WHERE status = ? AND available_at <= ? AND subscription IN ({placeholders}) LIMIT 1",
            (PENDING, now, *names),
        ).fetchone()
        if ready is None:
            return None
        order = "RANDOM()" if self._faults is not None and self._faults.reorder() else "d.available_at"
        with self._transaction():
            row = conn.execute(
                "SELECT d.message_id, d.subscription, d.attempts, m.topic, m.data, m.attributes, m.published_at "
                "FROM deliveries d JOIN messages m USING (message_id) "
                f"WHERE d.status = ? AND d.available_at <= ? AND d.subscription IN ({placeholders}) "
                f"ORDER BY {order} LIMIT 1",
                (PENDING, now, *names),
            ).fetchone()
            if row is None:
                return None
            attempts = int(row["attempts"]) + 1
            conn.execute(
                "UPDATE deliveries SET attempts=?, available_at=?, updated_at=? WHERE message_id=? AND subscription=?",
                (attempts, now + self._settings.ack_deadline_seconds, now, row["message_id"], row["subscription"]),
            )
        message = ReceivedMessage(
            message_id=row["message_id"],
            topic=row["topic"],
            subscription=row["subscription"],
            data=bytes(row["data"]),
            attributes=json.loads(row["attributes"]),
            publish_time=float(row["published_at"]),
            delivery_attempt=attempts,
        )
        return message, row["subscription"]

    def _nack(self, message: ReceivedMessage, error: Exception) -> None:
        self.stats.add(failed=1)
        reason = f"{type(error).__name__}: {error}"[:500]
        if message.delivery_attempt >= self._settings.max_attempts:
            self._dead_letter(message, reason)
            return
        backoff = min(
            self._settings.max_backoff_seconds,
            self._settings.min_backoff_seconds * (2 ** (message.delivery_attempt - 1)),
        )
        retry_at = time.time() + backoff * random.uniform(0.5, 1.0)
        self._settle(message, "available_at=?, last_error=?", (retry_at, reason))
        logger.warning(
            "delivery failed, will retry",
            extra={"subscription": message.subscription, "attempt": message.delivery_attempt, "reason": reason},
        )

    def _dead_letter(self, message: ReceivedMessage, reason: str) -> None:
        """Mark the delivery DEAD and publish it to the dead-letter topic in one transaction.

        Committed together, no crash can lose the dead letter, and `wait_idle` never sees a
        moment where the delivery is settled but its dead letter not yet pending.
        """
        with self._transaction() as conn:
            if not self._settle(message, "status=?, last_error=?", (DEAD, reason)):
                return
            row = conn.execute("SELECT dead_letter_topic FROM subscriptions WHERE name=?", (message.subscription,)).fetchone()
            forwarded = row is not None and bool(row["dead_letter_topic"])
            if forwarded:
                attributes = dict(message.attributes)
                attributes.update(
                    {
                        "CloudPubSubDeadLetterSourceSubscription": message.subscription,
                        "CloudPubSubDeadLetterSourceDeliveryCount": str(message.delivery_attempt),
                        "dead_letter_reason": reason,
                    }
                )
                self._insert_message(conn, row["dead_letter_topic"], message.data, attributes)
        self.stats.add(dead_lettered=1)
        logger.error(
            "delivery dead-lettered",
            extra={"subscription": message.subscription, "attempt": message.delivery_attempt, "reason": reason},
        )
        if forwarded:
            self._published()

    def _settle(self, message: ReceivedMessage, assignments: str, values: tuple[object, ...]) -> bool:
        """Apply `assignments` if this attempt still holds its lease; False (and counted) for a stale outcome."""
        cursor = self._db.connection().execute(  # inside a caller's _transaction too: one connection per thread
            f"UPDATE deliveries SET {assignments}, updated_at=? WHERE message_id=? AND subscription=? AND status=? AND attempts=?",
            (*values, time.time(), message.message_id, message.subscription, PENDING, message.delivery_attempt),
        )
        if cursor.rowcount != 1:
            self.stats.add(stale_outcomes=1)
            return False
        return True

    # --- erasure ---------------------------------------------------------------------------
    def forget_tenant(self, tenant_id: str) -> int:
        """Delete every message published for `tenant_id` and its deliveries, then leave no trace in the files.

        Deleted rows are zeroed (secure_delete) and the WAL is folded in and truncated.
        """
        with backend_errors():
            with self._transaction() as conn:
                ids = [
                    row["message_id"]
                    for row in conn.execute(
                        "SELECT message_id FROM messages WHERE json_extract(attributes, '$.tenant_id') = ?", (tenant_id,)
                    ).fetchall()
                ]
                for message_id in ids:
                    conn.execute("DELETE FROM deliveries WHERE message_id=?", (message_id,))
                    conn.execute("DELETE FROM messages WHERE message_id=?", (message_id,))
            self._db.checkpoint()
        return len(ids)

    def expire_settled(self, published_before: datetime) -> int:
        """Delete messages published before `published_before` with no delivery still PENDING, and their deliveries."""
        cutoff = published_before.timestamp()
        with backend_errors(), self._transaction() as conn:
            settled = (
                "SELECT message_id FROM messages m WHERE published_at < ? AND NOT EXISTS "
                "(SELECT 1 FROM deliveries d WHERE d.message_id = m.message_id AND d.status = ?)"
            )
            conn.execute(f"DELETE FROM deliveries WHERE message_id IN ({settled})", (cutoff, PENDING))
            return int(conn.execute(f"DELETE FROM messages WHERE message_id IN ({settled})", (cutoff, PENDING)).rowcount)

    def store_sizes(self) -> dict[str, int]:
        """Rows per table: messages, and deliveries by status."""
        conn = self._db.connection()
        sizes = {"messages": int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])}
        for status, count in conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall():
            sizes[f"deliveries_{str(status).lower()}"] = int(count)
        return sizes

    # --- inspection -----------------------------------------------------------------------
    def pending_count(self) -> int:
        """Deliveries not yet acknowledged or dead-lettered, over subscriptions with a handler."""
        names = list(self._handlers) or [""]
        placeholders = ",".join("?" * len(names))
        row = (
            self._db.connection()
            .execute(
                f"SELECT COUNT(*) AS n FROM deliveries WHERE status=? AND subscription IN ({placeholders})",
                (PENDING, *names),
            )
            .fetchone()
        )
        return int(row["n"])

    def backlog(self) -> dict[str, int]:
        """Deliveries still PENDING per subscription (every subscription, zero included)."""
        with backend_errors():
            conn = self._db.connection()
            depths = {str(row["name"]): 0 for row in conn.execute("SELECT name FROM subscriptions").fetchall()}
            for row in conn.execute("SELECT subscription, COUNT(*) AS n FROM deliveries WHERE status=? GROUP BY subscription", (PENDING,)):
                depths[str(row["subscription"])] = int(row["n"])
        return depths

    def wait_idle(self, timeout: float) -> bool:
        """Block until no handled delivery is pending; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending_count() == 0:
                return True
            time.sleep(0.02)
        return self.pending_count() == 0

    def messages(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        """Every message ever published to `topic` (data, attributes), oldest first."""
        rows = (
            self._db.connection().execute("SELECT data, attributes FROM messages WHERE topic=? ORDER BY published_at", (topic,)).fetchall()
        )
        return [(bytes(row["data"]), json.loads(row["attributes"])) for row in rows]
