"""One SQLite connection per thread, WAL mode, so many threads can share one database file."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import ParamSpec, TypeVar

from shared.ports import BackendUnavailable

P = ParamSpec("P")
R = TypeVar("R")

# How long a write waits for SQLite's lock before the call fails (and is retried by its guard).
BUSY_TIMEOUT_SECONDS = 10.0

# The data dir holds personal data and key material: only its owner may list or read it.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) if missing and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def private_data_dir(data_dir: Path) -> Path:
    """The data dir 0700 and every file in it 0600, now and for the files the backends create later.

    It holds personal data and the local key. The process umask makes files created later
    (DuckDB's WAL, SQLite's -wal and -shm) private from their first byte; existing files of
    an older data dir are narrowed here.
    """
    os.umask(0o077)
    private_dir(data_dir)
    for path in data_dir.rglob("*"):
        os.chmod(path, PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE)
    return data_dir


def private_file(path: Path) -> Path:
    """Create `path` empty if missing (0600 from its first moment) and make it 0600; its directory 0700.

    SQLite gives a database's -wal and -shm files the permissions of the database file.
    """
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    os.chmod(path, PRIVATE_FILE_MODE)
    return path


@contextmanager
def backend_errors() -> Iterator[None]:
    """SQLite's lock timeouts and I/O errors as our BackendUnavailable."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise BackendUnavailable(f"sqlite: {error}") from error


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` with SQLite's errors turned into ours."""

    @wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        with backend_errors():
            return fn(*args, **kwargs)

    return call


class ThreadLocalSqlite:
    """Hands each thread its own connection to the same file.

    A threaded HTTP server starts a thread per connection, so the connections of threads
    that have ended are closed whenever a new one is opened: file handles stay bounded
    by the live threads.
    """

    def __init__(self, path: Path, schema: str, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = private_file(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        with self.connection() as conn:
            conn.executescript(schema)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; use BEGIN IMMEDIATE for write transactions)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Deleted content is overwritten with zeros, so a purged tenant leaves nothing in free pages.
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                ended = [old for thread, old in self._all if not thread.is_alive()]
                self._all = [(thread, old) for thread, old in self._all if thread.is_alive()]
                self._all.append((threading.current_thread(), conn))
            for old in ended:
                old.close()
        return conn

    @contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection: BEGIN IMMEDIATE, COMMIT, or ROLLBACK on any exception."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes; False if a reader kept it from finishing."""
        row = self.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(row[0]) == 0

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for _, conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
