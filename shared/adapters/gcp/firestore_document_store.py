"""FirestoreDocumentStore: the DocumentStore port on Cloud Firestore (native mode)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.api_core import exceptions as google_errors
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.gcp.errors import google_errors_as_ours
from shared.ports import EXPIRE_AT, Document, DocumentStore, Page, PageCursor, Transaction, TransactionConflict
from shared.ports.document_store import Where, equalities

T = TypeVar("T")

_TIMEOUT_SECONDS = 30.0


class _FirestoreTransaction(Transaction):
    """Our Transaction over the client's: reads join the transaction, writes go out at commit."""

    def __init__(self, client: firestore.Client, transaction: firestore.Transaction) -> None:
        self._client = client
        self._transaction = transaction

    def get(self, collection: str, doc_id: str) -> Document | None:
        reference = self._client.collection(collection).document(doc_id)
        for snapshot in self._transaction.get(reference, timeout=_TIMEOUT_SECONDS):
            return _data(snapshot)
        return None

    def create(self, collection: str, doc_id: str, data: Document) -> None:
        # A create is a write with the precondition "does not exist": the commit fails if it does.
        self._transaction.create(self._client.collection(collection).document(doc_id), _stored(data))

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self._transaction.set(self._client.collection(collection).document(doc_id), _stored(data))

    def delete(self, collection: str, doc_id: str) -> None:
        self._transaction.delete(self._client.collection(collection).document(doc_id))


def _data(snapshot: Any) -> Document | None:
    if not snapshot.exists:
        return None
    return _read(snapshot.to_dict() or {})


def _stored(data: Document) -> Document:
    """`expire_at` as a timestamp: a TTL policy deletes a document only when its TTL field is one.

    https://cloud.google.com/firestore/docs/ttl ("the TTL field must contain a Date and time value").
    """
    if EXPIRE_AT not in data:
        return data
    value = data[EXPIRE_AT]
    if value is None:  # no expiry: absent, so the field's queries and TTL never see it
        return {key: item for key, item in data.items() if key != EXPIRE_AT}
    return {**data, EXPIRE_AT: _timestamp(value) if isinstance(value, str) else value}


def _read(data: Document) -> Document:
    value = data.get(EXPIRE_AT)
    if isinstance(value, datetime):
        return {**data, EXPIRE_AT: _iso(value)}
    return data


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FirestoreDocumentStore(DocumentStore):
    """Documents in Firestore; transactions use the client's retry on ABORTED (lost races)."""

    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def _ref(self, collection: str, doc_id: str) -> Any:
        return self._client.collection(collection).document(doc_id)

    def get(self, collection: str, doc_id: str) -> Document | None:
        with google_errors_as_ours(f"firestore get {collection}"):
            return _data(self._ref(collection, doc_id).get(timeout=_TIMEOUT_SECONDS))

    def create(self, collection: str, doc_id: str, data: Document) -> bool:
        with google_errors_as_ours(f"firestore create {collection}"):
            try:
                self._ref(collection, doc_id).create(_stored(data), timeout=_TIMEOUT_SECONDS)
            except google_errors.AlreadyExists:
                return False
            return True

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        with google_errors_as_ours(f"firestore set {collection}"):
            self._ref(collection, doc_id).set(_stored(data), timeout=_TIMEOUT_SECONDS)

    def delete(self, collection: str, doc_id: str) -> None:
        with google_errors_as_ours(f"firestore delete {collection}"):
            self._ref(collection, doc_id).delete(timeout=_TIMEOUT_SECONDS)

    def find(self, collection: str, field: str, value: Any, limit: int = 100) -> list[Document]:
        query = self._client.collection(collection).where(filter=FieldFilter(field, "==", value)).limit(limit)
        with google_errors_as_ours(f"firestore query {collection}"):
            return [_read(snapshot.to_dict() or {}) for snapshot in query.stream(timeout=_TIMEOUT_SECONDS)]

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
        """`order_by` the field, then the document id, and `start_after` the cursor.

        https://cloud.google.com/firestore/docs/query-data/query-cursors. Equality filters
        with an order on another field need a composite index (deploy.sh creates those used):
        the query reads only the matching page from the index, never the whole collection.
        """
        direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
        query: Any = self._client.collection(collection)
        for name, value in equalities(where):
            query = query.where(filter=FieldFilter(name, "==", value))
        query = query.order_by(order_by, direction=direction).order_by("__name__", direction=direction)
        if after is not None:
            value = _timestamp(after.value) if order_by == EXPIRE_AT and isinstance(after.value, str) else after.value
            query = query.start_after({order_by: value, "__name__": after.doc_id})
        with google_errors_as_ours(f"firestore query {collection}"):
            snapshots = list(query.limit(limit + 1).stream(timeout=_TIMEOUT_SECONDS))
        items = [(snapshot.id, _read(snapshot.to_dict() or {})) for snapshot in snapshots[:limit]]
        if len(snapshots) <= limit or not items:
            return Page(items=items)
        last_id, last = items[-1]
        return Page(items=items, next_cursor=PageCursor(last.get(order_by), last_id))

    def run_transaction(self, fn: Callable[[Transaction], T], max_attempts: int = 10) -> T:
        client = self._client

        @firestore.transactional  # type: ignore[untyped-decorator]
        def body(transaction: firestore.Transaction) -> T:
            return fn(_FirestoreTransaction(client, transaction))

        with google_errors_as_ours("firestore transaction"):
            try:
                result: T = body(client.transaction(max_attempts=max_attempts))
            except ValueError as error:
                # The client signals "every attempt was ABORTED" as a ValueError caused by the last Aborted.
                if isinstance(error.__cause__, google_errors.Aborted):
                    raise TransactionConflict(f"transaction still conflicting after {max_attempts} attempts") from error
                raise
            return result

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]
