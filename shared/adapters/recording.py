"""A recorder around every port: which function used which IAM permission on which resource.

Like `shared.adapters.guarded`, one thin wrapper per port; each call is looked up in the
port's declarations (`shared.ports.permissions`) and noted under the function that is
running (`PermissionRecorder.acting_as`). `make iam-check` runs the deployed functions'
handlers on embedded backends through these wrappers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from shared.ports import Document, DocumentStore, EventBus, KeyManager, Page, PageCursor, Row, Transaction, Warehouse
from shared.ports.document_store import Where
from shared.ports.permissions import Access, CallContext, accesses
from shared.services import Services

T = TypeVar("T")
UNATTRIBUTED = "<no function>"


class PermissionRecorder:
    """Collects (function, access) pairs; the function is whatever `acting_as` says is running."""

    def __init__(self) -> None:
        self.context = CallContext()
        self._function: ContextVar[str] = ContextVar("function", default=UNATTRIBUTED)
        self._lock = threading.Lock()
        self.used: dict[str, set[Access]] = {}

    @contextmanager
    def acting_as(self, function: str) -> Iterator[None]:
        """Attribute every port call inside the block to `function`."""
        token = self._function.set(function)
        try:
            yield
        finally:
            self._function.reset(token)

    def note(self, port: type, method: str, *args: Any, **kwargs: Any) -> None:
        """Record what this call of `port.method` needs, for the running function."""
        with self._lock:
            found = accesses(port, method, self.context, *args, **kwargs)
            self.used.setdefault(self._function.get(), set()).update(found)


class RecordingTransaction(Transaction):
    """A Transaction whose reads and writes are recorded."""

    def __init__(self, inner: Transaction, recorder: PermissionRecorder) -> None:
        self.inner = inner
        self._recorder = recorder

    def get(self, collection: str, doc_id: str) -> Document | None:
        self._recorder.note(Transaction, "get", collection, doc_id)
        return self.inner.get(collection, doc_id)

    def create(self, collection: str, doc_id: str, data: Document) -> None:
        self._recorder.note(Transaction, "create", collection, doc_id, data)
        self.inner.create(collection, doc_id, data)

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self._recorder.note(Transaction, "set", collection, doc_id, data)
        self.inner.set(collection, doc_id, data)

    def delete(self, collection: str, doc_id: str) -> None:
        self._recorder.note(Transaction, "delete", collection, doc_id)
        self.inner.delete(collection, doc_id)


class RecordingDocumentStore(DocumentStore):
    """A DocumentStore whose every call is recorded."""

    def __init__(self, inner: DocumentStore, recorder: PermissionRecorder) -> None:
        self.inner = inner
        self._recorder = recorder

    def get(self, collection: str, doc_id: str) -> Document | None:
        self._recorder.note(DocumentStore, "get", collection, doc_id)
        return self.inner.get(collection, doc_id)

    def create(self, collection: str, doc_id: str, data: Document) -> bool:
        self._recorder.note(DocumentStore, "create", collection, doc_id, data)
        return self.inner.create(collection, doc_id, data)

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self._recorder.note(DocumentStore, "set", collection, doc_id, data)
        self.inner.set(collection, doc_id, data)

    def delete(self, collection: str, doc_id: str) -> None:
        self._recorder.note(DocumentStore, "delete", collection, doc_id)
        self.inner.delete(collection, doc_id)

    def find(self, collection: str, field: str, value: Any, limit: int = 100) -> list[Document]:
        self._recorder.note(DocumentStore, "find", collection, field, value, limit)
        return self.inner.find(collection, field, value, limit)

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
        self._recorder.note(DocumentStore, "page", collection, order_by, where=where, descending=descending, limit=limit, after=after)
        return self.inner.page(collection, order_by, where=where, descending=descending, limit=limit, after=after)

    def erase_deleted(self) -> None:
        self._recorder.note(DocumentStore, "erase_deleted")
        self.inner.erase_deleted()

    def run_transaction(self, fn: Callable[[Transaction], T], max_attempts: int = 10) -> T:
        self._recorder.note(DocumentStore, "run_transaction", fn, max_attempts)
        return self.inner.run_transaction(lambda txn: fn(RecordingTransaction(txn, self._recorder)), max_attempts)

    def close(self) -> None:
        self.inner.close()


class RecordingWarehouse(Warehouse):
    """A Warehouse whose every call is recorded (statements are read for the tables they touch)."""

    def __init__(self, inner: Warehouse, recorder: PermissionRecorder) -> None:
        self.inner = inner
        self._recorder = recorder

    def ping(self) -> None:
        self._recorder.note(Warehouse, "ping")
        self.inner.ping()

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        self._recorder.note(Warehouse, "query", sql, params)
        return self.inner.query(sql, params)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._recorder.note(Warehouse, "execute", sql, params)
        self.inner.execute(sql, params)

    def append_rows(self, dataset: str, table: str, rows: list[Row]) -> None:
        self._recorder.note(Warehouse, "append_rows", dataset, table, rows)
        self.inner.append_rows(dataset, table, rows)

    def dataset_exists(self, dataset: str) -> bool:
        self._recorder.note(Warehouse, "dataset_exists", dataset)
        return self.inner.dataset_exists(dataset)

    def create_dataset(self, dataset: str) -> bool:
        self._recorder.note(Warehouse, "create_dataset", dataset)
        return self.inner.create_dataset(dataset)

    def delete_dataset(self, dataset: str) -> None:
        self._recorder.note(Warehouse, "delete_dataset", dataset)
        self.inner.delete_dataset(dataset)

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        self._recorder.note(Warehouse, "table_columns", dataset, table)
        return self.inner.table_columns(dataset, table)

    def erase_deleted(self) -> None:
        self._recorder.note(Warehouse, "erase_deleted")
        self.inner.erase_deleted()

    def close(self) -> None:
        self.inner.close()


class RecordingKeyManager(KeyManager):
    """A KeyManager whose every call is recorded."""

    def __init__(self, inner: KeyManager, recorder: PermissionRecorder) -> None:
        self.inner = inner
        self._recorder = recorder

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        self._recorder.note(KeyManager, "encrypt", plaintext, associated_data)
        return self.inner.encrypt(plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        self._recorder.note(KeyManager, "decrypt", ciphertext, associated_data)
        return self.inner.decrypt(ciphertext, associated_data)

    def describe(self) -> str:
        self._recorder.note(KeyManager, "describe")
        return self.inner.describe()


class RecordingEventBus(EventBus):
    """An EventBus whose publishes are recorded; `published` keeps them for delivery by the caller."""

    def __init__(self, inner: EventBus, recorder: PermissionRecorder) -> None:
        self.inner = inner
        self._recorder = recorder
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        self._recorder.note(EventBus, "publish", topic, data, attributes)
        message_id = self.inner.publish(topic, data, attributes)
        self.published.append((topic, data, dict(attributes or {})))
        return message_id

    def forget_tenant(self, tenant_id: str) -> int:
        self._recorder.note(EventBus, "forget_tenant", tenant_id)
        return self.inner.forget_tenant(tenant_id)

    def expire_settled(self, published_before: datetime) -> int:
        self._recorder.note(EventBus, "expire_settled", published_before)
        return self.inner.expire_settled(published_before)

    def backlog(self) -> dict[str, int] | None:
        self._recorder.note(EventBus, "backlog")
        return self.inner.backlog()

    def close(self) -> None:
        self.inner.close()


def record_services(services: Services, recorder: PermissionRecorder) -> Services:
    """`services` with every port behind a recorder (outside any guard, so a retried call counts once)."""
    return replace(
        services,
        documents=RecordingDocumentStore(services.documents, recorder),
        bus=RecordingEventBus(services.bus, recorder),
        warehouse=RecordingWarehouse(services.warehouse, recorder),
        keys=RecordingKeyManager(services.keys, recorder),
    )
