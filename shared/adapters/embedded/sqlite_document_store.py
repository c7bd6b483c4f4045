"""SqliteDocumentStore: Firestore-like documents and optimistic transactions on one SQLite file."""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from shared.adapters.embedded.sqlite_support import ThreadLocalSqlite, translated
from shared.ports import AlreadyExists, Document, DocumentStore, Page, PageCursor, Transaction, TransactionConflict
from shared.ports.document_store import Where, equalities

T = TypeVar("T")
logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    data TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (collection, doc_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revision_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO revision_counter (id, value) SELECT 1, COALESCE(MAX(revision), 0) FROM documents;
"""

_ABSENT = 0


class _SqliteTransaction(Transaction):
    def __init__(self, store: SqliteDocumentStore) -> None:
        self._store = store
        self.read_set: dict[tuple[str, str], int] = {}
        self.writes: dict[tuple[str, str], tuple[str, Document | None]] = {}

    def get(self, collection: str, doc_id: str) -> Document | None:
        if self.writes:
            raise RuntimeError("transactions must do all reads before writes")
        data, revision = self._store._read(collection, doc_id)
        self.read_set[(collection, doc_id)] = revision
        return data

    def create(self, collection: str, doc_id: str, data: Document) -> None:
        self.writes[(collection, doc_id)] = ("create", _copy(data))

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self.writes[(collection, doc_id)] = ("set", _copy(data))

    def delete(self, collection: str, doc_id: str) -> None:
        self.writes[(collection, doc_id)] = ("delete", None)


def _path(field: str) -> str:
    return f'$."{field}"'


def _copy(data: Document) -> Document:
    copied: Document = json.loads(json.dumps(data))
    return copied


class SqliteDocumentStore(DocumentStore):
    """Documents as JSON rows with a revision; a commit checks every revision it read.

    Revisions come from one counter for the whole store, so a document deleted and created
    again never gets back a revision it had: a transaction that read the old document cannot
    commit over the new one (Firestore's update times behave the same way).
    """

    def __init__(self, path: Path, busy_timeout: float | None = None) -> None:
        self._db = ThreadLocalSqlite(path, _SCHEMA) if busy_timeout is None else ThreadLocalSqlite(path, _SCHEMA, busy_timeout)

    @translated
    def _read(self, collection: str, doc_id: str) -> tuple[Document | None, int]:
        row = (
            self._db.connection()
            .execute("SELECT data, revision FROM documents WHERE collection=? AND doc_id=?", (collection, doc_id))
            .fetchone()
        )
        if row is None:
            return None, _ABSENT
        data: Document = json.loads(row["data"])
        return data, int(row["revision"])

    def get(self, collection: str, doc_id: str) -> Document | None:
        return self._read(collection, doc_id)[0]

    @staticmethod
    def _next_revision(conn: sqlite3.Connection) -> int:
        rows = conn.execute("UPDATE revision_counter SET value = value + 1 WHERE id = 1 RETURNING value").fetchall()
        return int(rows[0][0])

    @translated
    def create(self, collection: str, doc_id: str, data: Document) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO documents (collection, doc_id, data, revision) VALUES (?, ?, ?, ?)",
                (collection, doc_id, json.dumps(data), self._next_revision(conn)),
            )
            return cursor.rowcount == 1

    @translated
    def set(self, collection: str, doc_id: str, data: Document) -> None:
        with self._write() as conn:
            self._upsert(conn, collection, doc_id, data)

    def _upsert(self, conn: sqlite3.Connection, collection: str, doc_id: str, data: Document) -> None:
        conn.execute(
            "INSERT INTO documents (collection, doc_id, data, revision) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (collection, doc_id) DO UPDATE SET data=excluded.data, revision=excluded.revision",
            (collection, doc_id, json.dumps(data), self._next_revision(conn)),
        )

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One short write transaction (the counter and the document change together)."""
        return self._db.write_transaction()

    @translated
    def delete(self, collection: str, doc_id: str) -> None:
        self._db.connection().execute("DELETE FROM documents WHERE collection=? AND doc_id=?", (collection, doc_id))

    @translated
    def find(self, collection: str, field: str, value: Any, limit: int = 100) -> list[Document]:
        rows = (
            self._db.connection()
            .execute(
                "SELECT data FROM documents WHERE collection=? AND json_extract(data, ?) = ? LIMIT ?",
                (collection, f'$."{field}"', value, limit),
            )
            .fetchall()
        )
        return [json.loads(row["data"]) for row in rows]

    @translated
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
        key = "json_extract(data, :order_path)"
        clauses = ["collection = :collection", f"{key} IS NOT NULL"]
        params: dict[str, Any] = {"collection": collection, "order_path": _path(order_by), "limit": limit + 1}
        for n, (name, value) in enumerate(equalities(where)):
            clauses.append(f"json_extract(data, :where_path{n}) = :where_value{n}")
            params.update({f"where_path{n}": _path(name), f"where_value{n}": value})
        if after is not None:
            beyond = "<" if descending else ">"
            clauses.append(f"({key} {beyond} :after_value OR ({key} = :after_value AND doc_id {beyond} :after_id))")
            params.update(after_value=after.value, after_id=after.doc_id)
        direction = "DESC" if descending else "ASC"
        rows = (
            self._db.connection()
            .execute(
                f"SELECT doc_id, data, {key} AS ordering FROM documents WHERE {' AND '.join(clauses)} "
                f"ORDER BY ordering {direction}, doc_id {direction} LIMIT :limit",
                params,
            )
            .fetchall()
        )
        items = [(str(row["doc_id"]), json.loads(row["data"])) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=PageCursor(rows[limit - 1]["ordering"], items[-1][0]) if more and items else None)

    def erase_deleted(self) -> None:
        """Deleted rows are zeroed as they go (secure_delete); fold the WAL in and truncate it so no old page survives."""
        if not self._db.checkpoint():
            logger.warning("WAL not truncated: a reader held it; deleted documents leave it at the next checkpoint")

    def run_transaction(self, fn: Callable[[Transaction], T], max_attempts: int = 10) -> T:
        """Firestore's promise: `fn` sees one consistent state, or its outcome is discarded and it runs again.

        Reads here happen one at a time, so `fn` can see a mix of states. Whatever it made of
        them (its writes, its result, or an exception it raised) stands only if every document
        it read is still at the revision it saw; otherwise `fn` runs again.
        """
        for attempt in range(max_attempts):
            txn = _SqliteTransaction(self)
            try:
                result = fn(txn)
            except Exception:
                if self._reads_current(txn):
                    raise
            else:
                if self._commit(txn):
                    return result
            time.sleep(min(0.2, 0.002 * (2**attempt)) * random.random())
        raise TransactionConflict(f"transaction still conflicting after {max_attempts} attempts")

    @translated
    def _reads_current(self, txn: _SqliteTransaction) -> bool:
        """Every document `txn` read is still at the revision it saw (checked in one read transaction)."""
        conn = self._db.connection()
        conn.execute("BEGIN")
        try:
            return all(self._read(collection, doc_id)[1] == revision for (collection, doc_id), revision in txn.read_set.items())
        finally:
            conn.execute("COMMIT")

    @translated
    def _commit(self, txn: _SqliteTransaction) -> bool:
        if not txn.writes:
            return self._reads_current(txn)
        conn = self._db.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for (collection, doc_id), revision in txn.read_set.items():
                if self._read(collection, doc_id)[1] != revision:
                    conn.execute("ROLLBACK")
                    return False
            for (collection, doc_id), (op, data) in txn.writes.items():
                if op == "create" and self._read(collection, doc_id)[0] is not None:
                    raise AlreadyExists(f"{collection}/{doc_id} already exists")
                if op == "delete":
                    conn.execute("DELETE FROM documents WHERE collection=? AND doc_id=?", (collection, doc_id))
                else:
                    self._upsert(conn, collection, doc_id, data or {})
            conn.execute("COMMIT")
            return True
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
