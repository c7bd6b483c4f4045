"""FirestoreDocumentStore: the DocumentStore port on Cloud Firestore (native mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as google_errors
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.gcp.errors import google_errors_as_ours
from shared.ports import Document, DocumentStore, Transaction, TransactionConflict

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
        self._transaction.create(self._client.collection(collection).document(doc_id), data)

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self._transaction.set(self._client.collection(collection).document(doc_id), data)

    def delete(self, collection: str, doc_id: str) -> None:
        self._transaction.delete(self._client.collection(collection).document(doc_id))


def _data(snapshot: Any) -> Document | None:
    if not snapshot.exists:
        return None
    data: Document = snapshot.to_dict() or {}
    return data


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
                self._ref(collection, doc_id).create(data, timeout=_TIMEOUT_SECONDS)
            except google_errors.AlreadyExists:
                return False
            return True

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        with google_errors_as_ours(f"firestore set {collection}"):
            self._ref(collection, doc_id).set(data, timeout=_TIMEOUT_SECONDS)

    def delete(self, collection: str, doc_id: str) -> None:
        with google_errors_as_ours(f"firestore delete {collection}"):
            self._ref(collection, doc_id).delete(timeout=_TIMEOUT_SECONDS)

    def find(self, collection: str, field: str, value: Any, limit: int = 100) -> list[Document]:
        query = self._client.collection(collection).where(filter=FieldFilter(field, "==", value)).limit(limit)
        with google_errors_as_ours(f"firestore query {collection}"):
            return [snapshot.to_dict() or {} for snapshot in query.stream(timeout=_TIMEOUT_SECONDS)]

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
