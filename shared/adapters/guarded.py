"""A guard around every adapter: per-call deadline, bounded retry with jitter, injected faults, cloud profile.

`CallGuard` owns the policy; one thin wrapper per port (`GuardedDocumentStore`,
`GuardedWarehouse`, `GuardedKeyManager`, `GuardedEventBus`) routes each call through it.
Only BackendUnavailable is retried: it means the call did not happen or did not finish,
and every port call we retry is safe to repeat (reads, create-if-absent, MERGE, publish
of an idempotently handled message, a whole transaction).

With a CloudProfile (`ONBOARDING_CLOUD_PROFILE=gcp`, shared/cloud_profile.py) each call also
takes Google Cloud's latency and meets its quotas, inside the same retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from shared.config import CallSettings
from shared.faults import FaultInjector
from shared.ports import (
    BackendUnavailable,
    Document,
    DocumentStore,
    EventBus,
    KeyManager,
    Page,
    PageCursor,
    RateLimited,
    Row,
    Transaction,
    Warehouse,
)
from shared.ports.document_store import Where

if TYPE_CHECKING:
    from shared.cloud_profile import CloudProfile

logger = logging.getLogger(__name__)
T = TypeVar("T")


class CallGuard:
    """Runs one adapter call with its deadline, injected faults, the cloud profile and a bounded, jittered retry."""

    def __init__(self, policy: CallSettings, faults: FaultInjector | None = None, profile: CloudProfile | None = None) -> None:
        self.policy = policy
        self.faults = faults
        self.profile = profile
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        """Calls, retries, injected failures and timeouts so far."""
        with self._lock:
            return dict(self.counts)

    def call(self, port: str, method: str, fn: Callable[[], T], subject: str | None = None) -> T:
        """`fn()`, retried on BackendUnavailable up to the policy's attempts; `subject` is the SQL or document it touches."""
        attempts = self.policy.attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._once(port, method, fn, subject)
            except BackendUnavailable as error:
                if attempt == attempts:
                    if isinstance(error, RateLimited):
                        self._count("rate_limited_unretried")
                    raise
                self._count("retries")
                backoff = min(self.policy.max_backoff_seconds, self.policy.min_backoff_seconds * 2 ** (attempt - 1))
                logger.debug("backend call retried", extra={"port": port, "method": method, "attempt": attempt, "reason": str(error)[:200]})
                time.sleep(random.uniform(0, backoff))
        raise AssertionError("unreachable")

    def transaction(self, inner: DocumentStore, fn: Callable[[Transaction], T], max_attempts: int) -> T:
        """`inner.run_transaction(fn)`, through the cloud profile's transaction model when there is one."""
        if self.profile is None:
            return inner.run_transaction(fn, max_attempts)
        return self.profile.transaction(inner.run_transaction, fn, max_attempts)

    def push_handler(self, subscription: str, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """`handler` for a push subscription; with a cloud profile it is delivered as Pub/Sub pushes to a Cloud Function."""
        return handler if self.profile is None else self.profile.push_handler(subscription, handler)

    def _once(self, port: str, method: str, fn: Callable[[], T], subject: str | None = None) -> T:
        self._count("calls")
        deadline = self.policy.timeout_seconds
        if self.faults is not None:
            pause, failure = self.faults.backend_call(port, method)
            if pause >= deadline:
                time.sleep(deadline)
                self._count("timeouts")
                self.faults.count("backend_timeouts")
                raise BackendUnavailable(f"{port}.{method} exceeded its {deadline:g}s deadline ({failure or 'injected delay'})")
            if pause:
                time.sleep(pause)
            if failure is not None:
                self._count("injected_failures")
                self.faults.count("backend_failures")
                raise BackendUnavailable(failure)
        started = time.monotonic()
        result = fn() if self.profile is None else self.profile.call(port, method, subject, fn)
        if time.monotonic() - started > deadline:
            # The adapter's own limit (busy timeout, interrupt) should have fired; say so.
            self._count("slow_calls")
            logger.warning("backend call outlived its deadline", extra={"port": port, "method": method, "deadline_seconds": deadline})
        return result


class GuardedDocumentStore(DocumentStore):
    """A DocumentStore whose every call goes through a CallGuard."""

    def __init__(self, inner: DocumentStore, guard: CallGuard) -> None:
        self.inner = inner
        self._guard = guard

    def get(self, collection: str, doc_id: str) -> Document | None:
        return self._guard.call("documents", "get", lambda: self.inner.get(collection, doc_id))

    def create(self, collection: str, doc_id: str, data: Document) -> bool:
        return self._guard.call("documents", "create", lambda: self.inner.create(collection, doc_id, data), f"{collection}/{doc_id}")

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self._guard.call("documents", "set", lambda: self.inner.set(collection, doc_id, data), f"{collection}/{doc_id}")

    def delete(self, collection: str, doc_id: str) -> None:
        self._guard.call("documents", "delete", lambda: self.inner.delete(collection, doc_id), f"{collection}/{doc_id}")

    def find(self, collection: str, field: str, value: Any, limit: int = 100) -> list[Document]:
        return self._guard.call("documents", "find", lambda: self.inner.find(collection, field, value, limit))

    def page(
        self,
        collection: str,
        order_by: str,
        *,
        where: Where = None,
        descending: bool = False,
        limit: int = 100,
        after: PageCursor | None = None,
    ) -> Page:
        return self._guard.call(
            "documents",
            "page",
            lambda: self.inner.page(collection, order_by, where=where, descending=descending, limit=limit, after=after),
        )

    def erase_deleted(self) -> None:
        self._guard.call("documents", "erase_deleted", self.inner.erase_deleted)

    def run_transaction(self, fn: Callable[[Transaction], T], max_attempts: int = 10) -> T:
        return self._guard.call("documents", "run_transaction", lambda: self._guard.transaction(self.inner, fn, max_attempts))

    def close(self) -> None:
        self.inner.close()


class GuardedWarehouse(Warehouse):
    """A Warehouse whose every call goes through a CallGuard."""

    def __init__(self, inner: Warehouse, guard: CallGuard) -> None:
        self.inner = inner
        self._guard = guard

    def ping(self) -> None:
        self._guard.call("warehouse", "ping", self.inner.ping, "SELECT 1")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self._guard.call("warehouse", "query", lambda: self.inner.query(sql, params), sql)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._guard.call("warehouse", "execute", lambda: self.inner.execute(sql, params), sql)

    def append_rows(self, dataset: str, table: str, rows: list[Row]) -> None:
        self._guard.call("warehouse", "append_rows", lambda: self.inner.append_rows(dataset, table, rows), f"{dataset}.{table}")

    def dataset_exists(self, dataset: str) -> bool:
        return self._guard.call("warehouse", "dataset_exists", lambda: self.inner.dataset_exists(dataset), dataset)

    def create_dataset(self, dataset: str) -> bool:
        return self._guard.call("warehouse", "create_dataset", lambda: self.inner.create_dataset(dataset), dataset)

    def delete_dataset(self, dataset: str) -> None:
        self._guard.call("warehouse", "delete_dataset", lambda: self.inner.delete_dataset(dataset), dataset)

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        return self._guard.call("warehouse", "table_columns", lambda: self.inner.table_columns(dataset, table), f"{dataset}.{table}")

    def erase_deleted(self) -> None:
        self._guard.call("warehouse", "erase_deleted", self.inner.erase_deleted)

    def close(self) -> None:
        self.inner.close()


class GuardedKeyManager(KeyManager):
    """A KeyManager whose every call goes through a CallGuard."""

    def __init__(self, inner: KeyManager, guard: CallGuard) -> None:
        self.inner = inner
        self._guard = guard

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return self._guard.call("keys", "encrypt", lambda: self.inner.encrypt(plaintext, associated_data))

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        return self._guard.call("keys", "decrypt", lambda: self.inner.decrypt(ciphertext, associated_data))

    def describe(self) -> str:
        return self.inner.describe()


class GuardedEventBus(EventBus):
    """An EventBus whose publish goes through a CallGuard; anything else reaches the inner bus."""

    def __init__(self, inner: EventBus, guard: CallGuard) -> None:
        self.inner = inner
        self._guard = guard

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        return self._guard.call("bus", "publish", lambda: self.inner.publish(topic, data, attributes))

    def forget_tenant(self, tenant_id: str) -> int:
        return self._guard.call("bus", "forget_tenant", lambda: self.inner.forget_tenant(tenant_id))

    def expire_settled(self, published_before: datetime) -> int:
        return self._guard.call("bus", "expire_settled", lambda: self.inner.expire_settled(published_before))

    def backlog(self) -> dict[str, int] | None:
        return self.inner.backlog()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # The embedded bus is also the local delivery platform (start, subscribe, stats...).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


GUARDS = (GuardedDocumentStore, GuardedWarehouse, GuardedKeyManager, GuardedEventBus)


def unwrap(adapter: Any) -> Any:
    """The adapter inside any guard wrappers."""
    while isinstance(adapter, GUARDS):
        adapter = adapter.inner
    return adapter
