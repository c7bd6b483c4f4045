"""DocumentStore port: Firestore's model of collections, documents and optimistic transactions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from shared.ports.permissions import FIRESTORE_IAM, documents, requires, transaction

T = TypeVar("T")
Document = dict[str, Any]


class Transaction(ABC):
    """Reads first, then writes; the commit fails if anything read has changed since."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.get"))
    @abstractmethod
    def get(self, collection: str, doc_id: str) -> Document | None:
        """Read a document inside the transaction (joins the read set)."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.create"))  # commit with exists=false
    @abstractmethod
    def create(self, collection: str, doc_id: str, data: Document) -> None:
        """Create a document; the commit fails with AlreadyExists if it exists."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.create", "datastore.entities.update"))  # commit, no precondition
    @abstractmethod
    def set(self, collection: str, doc_id: str, data: Document) -> None:
        """Replace (or create) a document."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.delete"))
    @abstractmethod
    def delete(self, collection: str, doc_id: str) -> None:
        """Delete a document if present."""


class DocumentStore(ABC):
    """A document database with create-if-absent and read-modify-write transactions."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.get"))
    @abstractmethod
    def get(self, collection: str, doc_id: str) -> Document | None:
        """One document, or None."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.create"))  # createDocument
    @abstractmethod
    def create(self, collection: str, doc_id: str, data: Document) -> bool:
        """Create if absent: True when this call created it, False when it already existed."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.create", "datastore.entities.update"))  # commit, no precondition
    @abstractmethod
    def set(self, collection: str, doc_id: str, data: Document) -> None:
        """Replace (or create) a document."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.delete"))
    @abstractmethod
    def delete(self, collection: str, doc_id: str) -> None:
        """Delete a document if present."""

    @requires(FIRESTORE_IAM, documents("datastore.entities.get", "datastore.entities.list"))  # runQuery
    @abstractmethod
    def find(self, collection: str, field: str, value: Any, limit: int = 100) -> list[Document]:
        """Documents whose top-level `field` equals `value` (order unspecified)."""

    @requires(FIRESTORE_IAM, transaction)  # beginTransaction, commit, rollback
    @abstractmethod
    def run_transaction(self, fn: Callable[[Transaction], T], max_attempts: int = 10) -> T:
        """Run `fn` in a transaction, re-running it on conflict up to `max_attempts` times.

        `fn` may run more than once, so it must do nothing but reads and writes through the
        transaction it is given. Raises TransactionConflict when every attempt conflicted.
        """

    def close(self) -> None:
        """Release connections (optional)."""
