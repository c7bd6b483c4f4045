"""DuckdbWarehouse: runs our BigQuery-dialect SQL on an embedded DuckDB file through sqlglot.

A BigQuery dataset is a DuckDB schema; `dataset.table` names carry over unchanged.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from shared.ports import BackendError, BackendUnavailable, NotFound, Row, TransactionConflict, Warehouse

_BIGQUERY_TYPES = {
    "VARCHAR": "STRING",
    "BIGINT": "INT64",
    "INTEGER": "INT64",
    "HUGEINT": "INT64",
    "DOUBLE": "FLOAT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIMESTAMP": "DATETIME",
    "BLOB": "BYTES",
    "JSON": "JSON",
}


def _bigquery_semantics(node: exp.Expression) -> exp.Expression:
    """Where DuckDB's function differs from BigQuery's, keep BigQuery's meaning."""
    if isinstance(node, exp.CountIf) and not isinstance(node.parent, exp.Coalesce):
        # BigQuery's COUNTIF of no rows is 0; DuckDB's COUNT_IF is NULL.
        return exp.Coalesce(this=node.copy(), expressions=[exp.Literal.number(0)])
    return node


@lru_cache(maxsize=512)
def to_duckdb(sql: str) -> str:
    """BigQuery SQL rewritten for DuckDB, statement by statement."""
    statements = sqlglot.parse(sql, read="bigquery")
    return ";\n".join(statement.transform(_bigquery_semantics).sql(dialect="duckdb") for statement in statements if statement)


def _bigquery_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return "NUMERIC"
    return _BIGQUERY_TYPES.get(duckdb_type, duckdb_type)


class _Watchdog:
    """One thread that interrupts any DuckDB statement still running at its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, duckdb.DuckDBPyConnection]] = []
        self._live: set[int] = set()
        self._tokens = itertools.count()
        self._fired: set[int] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="warehouse-watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def limit(self, cursor: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[set[int]]:
        """Interrupt `cursor` if the block is still running after `seconds`."""
        token = next(self._tokens)
        due = time.monotonic() + seconds
        with self._cond:
            self._live.add(token)
            # Wake the thread only for a deadline earlier than the one it waits for (statements
            # share one timeout, so that is rare): a wake-up per statement costs a thread switch.
            earliest = not self._heap or due < self._heap[0][0]
            heapq.heappush(self._heap, (due, token, cursor))
            if earliest:
                self._cond.notify()
        try:
            yield {token}
        finally:
            with self._cond:
                self._live.discard(token)

    def fired(self, tokens: set[int]) -> bool:
        """Whether the watchdog interrupted the block that got `tokens`."""
        with self._cond:
            hit = bool(tokens & self._fired)
            self._fired -= tokens
            return hit

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, token, cursor = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._fired.add(token)
                cursor.interrupt()

    def close(self) -> None:
        """Stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()


@dataclass
class _Append:
    """Rows waiting for the next group commit, and how it went for them."""

    dataset: str
    table: str
    rows: list[Row]
    done: bool = False
    error: BackendError | None = None


class DuckdbWarehouse(Warehouse):
    """One DuckDB database file per process; writes are serialized, reads run in parallel.

    Every statement has a deadline (`timeout_seconds`): the watchdog interrupts it and the
    call fails with BackendUnavailable; a write waits for the write lock no longer than
    that either. DuckDB allows one writing process per file, and a process that was just
    killed may hold its lock for a moment, so opening retries for `open_timeout_seconds`.
    """

    def __init__(self, path: Path, timeout_seconds: float = 10.0, open_timeout_seconds: float = 30.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._open_timeout = open_timeout_seconds
        self._root = self._open(path, open_timeout_seconds)
        self._root.execute("SET TimeZone='UTC'")
        self._local = threading.local()
        self._generation = 0  # bumped when erase_deleted reopens the file: every thread's cursor is then stale
        self._gate = threading.Condition()
        self._users = 0
        self._rewriting = False
        self._write_lock = threading.Lock()
        self._cursors: list[tuple[threading.Thread, duckdb.DuckDBPyConnection]] = []
        self._cursors_lock = threading.Lock()
        self._timeout = timeout_seconds
        self._watchdog = _Watchdog()
        self._appends: list[_Append] = []
        self._appends_lock = threading.Lock()

    @staticmethod
    def _open(path: Path, open_timeout_seconds: float) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + open_timeout_seconds
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(path))
            except duckdb.IOException as error:
                if time.monotonic() + delay > deadline:
                    raise BackendUnavailable(f"cannot open warehouse file {path.name}: {error}") from error
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if not self._write_lock.acquire(timeout=self._timeout):
            raise BackendUnavailable(f"warehouse write lock not free within {self._timeout:g}s")
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def _using(self) -> Iterator[None]:
        """Every use of the file; waits while erase_deleted rewrites it."""
        with self._gate:
            if not self._gate.wait_for(lambda: not self._rewriting, timeout=self._timeout):
                raise BackendUnavailable(f"warehouse file not reopened within {self._timeout:g}s")
            self._users += 1
        try:
            yield
        finally:
            with self._gate:
                self._users -= 1
                self._gate.notify_all()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None or getattr(self._local, "generation", -1) != self._generation:
            cursor = self._root.cursor()
            cursor.execute("SET TimeZone='UTC'")
            self._local.cursor = cursor
            self._local.generation = self._generation
            with self._cursors_lock:  # close the cursors of threads that have ended
                ended = [old for thread, old in self._cursors if not thread.is_alive()]
                self._cursors = [(thread, old) for thread, old in self._cursors if thread.is_alive()]
                self._cursors.append((threading.current_thread(), cursor))
            for old in ended:
                old.close()
        return cursor

    def _run(self, sql: str, params: dict[str, Any] | None) -> duckdb.DuckDBPyConnection:
        statement = to_duckdb(sql)
        cursor = self._cursor()
        with self._watchdog.limit(cursor, self._timeout) as token:
            try:
                return cursor.execute(statement, params or None)
            except duckdb.InterruptException as error:
                if self._watchdog.fired(token):
                    raise BackendUnavailable(f"warehouse statement exceeded its {self._timeout:g}s deadline") from error
                raise BackendUnavailable("warehouse statement interrupted") from error
            except duckdb.TransactionException as error:
                raise TransactionConflict(str(error)) from error
            except duckdb.IOException as error:
                raise BackendUnavailable(str(error)) from error

    def ping(self) -> None:
        self.query("SELECT 1 AS ok")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        with self._using():
            result = self._run(sql, params)
            columns = [column[0] for column in result.description or []]
            return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._writing(), self._using():
            self._run(sql, params)

    def append_rows(self, dataset: str, table: str, rows: list[Row]) -> None:
        """Appends from many threads share commits: whoever gets the write lock first writes every
        append queued by then in one transaction (a group commit), and each caller returns once
        its own rows are committed.
        """
        if not rows:
            return
        pending = _Append(dataset, table, rows)
        with self._appends_lock:
            self._appends.append(pending)
        with self._writing():
            if not pending.done:
                with self._appends_lock:
                    batch, self._appends = self._appends, []
                with self._using():
                    self._write_appends(batch)
        if pending.error is not None:
            raise pending.error

    def _write_appends(self, batch: list[_Append]) -> None:
        cursor = self._cursor()
        try:
            self._insert(cursor, batch, in_transaction=True)
        except BackendError:
            for append in batch:  # one bad append must not fail the others: each on its own
                try:
                    self._insert(cursor, [append], in_transaction=False)
                except BackendError as error:
                    append.error = error
        for append in batch:
            append.done = True

    def _insert(self, cursor: duckdb.DuckDBPyConnection, batch: list[_Append], *, in_transaction: bool) -> None:
        with self._watchdog.limit(cursor, self._timeout) as token:
            try:
                if in_transaction:
                    cursor.execute("BEGIN TRANSACTION")
                for append in batch:
                    columns = list(append.rows[0])
                    names = ", ".join(f'"{_identifier(column)}"' for column in columns)
                    placeholders = ", ".join("?" for _ in columns)
                    statement = (
                        f'INSERT INTO "{_identifier(append.dataset)}"."{_identifier(append.table)}" ({names}) VALUES ({placeholders})'
                    )
                    cursor.executemany(statement, [[row[column] for column in columns] for row in append.rows])
                if in_transaction:
                    cursor.execute("COMMIT")
            except duckdb.Error as error:
                if in_transaction:
                    with contextlib.suppress(duckdb.Error):
                        cursor.execute("ROLLBACK")
                if isinstance(error, duckdb.InterruptException):
                    reason = f"exceeded its {self._timeout:g}s deadline" if self._watchdog.fired(token) else "interrupted"
                    raise BackendUnavailable(f"warehouse append {reason}") from error
                if isinstance(error, duckdb.CatalogException):
                    raise NotFound(str(error)) from error
                if isinstance(error, duckdb.IOException | duckdb.TransactionException):
                    raise BackendUnavailable(str(error)) from error
                raise BackendError(f"warehouse append refused: {error}") from error

    def dataset_exists(self, dataset: str) -> bool:
        # Naming the schema looks it up (case-insensitively, as DuckDB resolves names); a query on
        # duckdb_schemas() would list every tenant's schema first, on each call.
        with self._using():
            cursor = self._cursor()
            try:
                cursor.execute(f"SET schema = '{_identifier(dataset)}'")
            except duckdb.CatalogException:
                return False
            finally:
                cursor.execute("SET schema = 'main'")
            return True

    def create_dataset(self, dataset: str) -> bool:
        with self._writing():
            if self.dataset_exists(dataset):
                return False
            with self._using():
                self._cursor().execute(f'CREATE SCHEMA "{_identifier(dataset)}"')
            return True

    def delete_dataset(self, dataset: str) -> None:
        with self._writing(), self._using():
            self._cursor().execute(f'DROP SCHEMA IF EXISTS "{_identifier(dataset)}" CASCADE')

    def erase_deleted(self) -> None:
        """Rewrite the file so no deleted row or dropped dataset survives in it.

        DuckDB reuses the blocks a delete frees but never clears them, and a CHECKPOINT keeps
        the rows of a row group it does not rewrite: deleted values stay readable in the file.
        So the database is copied (live data only) into a new file that replaces the old one,
        with every other call held back meanwhile.
        """
        compacted = self._path.with_name(self._path.name + ".compact")
        with self._writing():
            with self._gate:
                self._rewriting = True
                idle = self._gate.wait_for(lambda: self._users == 0, timeout=self._timeout)
            try:
                if not idle:
                    raise BackendUnavailable(f"warehouse still in use after {self._timeout:g}s; not rewritten")
                self._rewrite(compacted)
            finally:
                with self._gate:
                    self._rewriting = False
                    self._gate.notify_all()

    def _rewrite(self, compacted: Path) -> None:
        compacted.unlink(missing_ok=True)
        name = self._root.execute("SELECT current_database()").fetchall()[0][0]
        self._root.execute("CHECKPOINT")
        self._root.execute(f"ATTACH '{compacted}' AS compacted")
        try:
            self._root.execute(f'COPY FROM DATABASE "{name}" TO compacted')
        finally:
            self._root.execute("DETACH compacted")
        self._close_cursors()
        self._root.close()
        os.replace(compacted, self._path)
        self._root = self._open(self._path, self._open_timeout)
        self._root.execute("SET TimeZone='UTC'")
        self._generation += 1

    def _close_cursors(self) -> None:
        with self._cursors_lock:
            cursors, self._cursors = self._cursors, []
        for _, cursor in cursors:
            cursor.close()

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        # DESCRIBE looks the one table up; duckdb_columns() would list every tenant's columns first.
        try:
            with self._using():
                rows = self._cursor().execute(f'DESCRIBE "{_identifier(dataset)}"."{_identifier(table)}"').fetchall()
        except duckdb.CatalogException:
            return None
        return {str(row[0]): _bigquery_type(str(row[1])) for row in rows}

    def close(self) -> None:
        self._watchdog.close()
        self._root.close()


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError("dataset names are letters, digits and underscores")
    return name
