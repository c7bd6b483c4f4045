"""DocumentStore port: Firestore's model of collections, documents and optimistic transactions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.ports.permissions import FIRESTORE_IAM, documents, nothing, requires, transaction

T = TypeVar("T")
Document = dict[str, Any]

# A document's time of expiry: an ISO-8601 UTC string in the domain. Firestore stores this field
# as a timestamp, because its TTL policies only delete documents whose TTL field is one:
# https://cloud.google.com/firestore/docs/ttl
EXPIRE_AT = "expire_at"

# Equality filters of a paged query: one (field, value) pair, or a mapping of several (all must hold).
Where = tuple[str, Any] | Mapping[str, Any] | None


def equalities(where: Where) -> list[tuple[str, Any]]:
    """The (field, value) pairs of a `where`, in a stable order."""
    if where is None:
        return []
    if isinstance(where, tuple):
        return [where]
    return sorted(where.items())


@dataclass(frozen=True)
class PageCursor:
    """Where a page ended: the last document's ordering value and its id (the tie-breaker)."""

    value: Any
    doc_id: str


@dataclass(frozen=True)
class Page:
    """One page of an ordered query: (id, document) pairs, and the cursor of the next page if there is one."""

    items: list[tuple[str, Document]] = field(default_factory=list)
    next_cursor: PageCursor | None = None


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

    @requires(FIRESTORE_IAM, documents("datastore.entities.get", "datastore.entities.list"))  # runQuery
    @abstractmethod
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
        """Up to `limit` documents ordered by `order_by`, then by id; documents without that field are left out.

        `where` holds equality filters: a (field, value) pair, or a mapping of several that
        must all hold. `after` is the cursor a previous page
        returned; a document written behind it since is not seen, as with Firestore's
        `order_by` + `start_after`.
        """

    def scan(self, collection: str, order_by: str, *, where: Where = None, page_size: int = 200) -> Iterator[tuple[str, Document]]:
        """Every matching document, page by page, in `order_by` order."""
        after: PageCursor | None = None
        while True:
            page = self.page(collection, order_by, where=where, limit=page_size, after=after)
            yield from page.items
            if page.next_cursor is None:
                return
            after = page.next_cursor

    @requires(FIRESTORE_IAM, transaction)  # beginTransaction, commit, rollback
    @abstractmethod
    def run_transaction(self, fn: Callable[[Transaction], T], max_attempts: int = 10) -> T:
        """Run `fn` in a transaction, re-running it on conflict up to `max_attempts` times.

        `fn` may run more than once, so it must do nothing but reads and writes through the
        transaction it is given. Raises TransactionConflict when every attempt conflicted.
        """

    @requires(FIRESTORE_IAM, nothing)  # no Firestore call: a delete is final there
    def erase_deleted(self) -> None:
        """Leave nothing of deleted documents in this store's own files (a purge calls it).

        Firestore has no files of ours: a delete is final there, apart from what Google keeps
        (point-in-time recovery, backups; see docs/lifetimes.md). The embedded store overrides it.
        """

    def close(self) -> None:
        """Release connections (optional)."""
