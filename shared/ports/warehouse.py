"""Warehouse port: BigQuery-dialect SQL with named @parameters, plus dataset management."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

Row = dict[str, Any]


class Warehouse(ABC):
    """Runs the SQL we write once in BigQuery's dialect; a dataset holds tables and views."""

    @abstractmethod
    def ping(self) -> None:
        """Run `SELECT 1`; raise BackendError if the warehouse cannot answer."""

    @abstractmethod
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run a query (BigQuery dialect, @named parameters) and return every row."""

    @abstractmethod
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """Run DDL or DML (BigQuery dialect) to completion."""

    @abstractmethod
    def append_rows(self, dataset: str, table: str, rows: list[Row]) -> None:
        """Append `rows` to a table without DML: no per-table DML limit applies.

        Values are str, int, float, bool, date, datetime or None. At least once: a retried
        call may append a row twice, so tables fed this way are read through latest-row views.
        """

    @abstractmethod
    def dataset_exists(self, dataset: str) -> bool:
        """Whether the dataset exists."""

    @abstractmethod
    def create_dataset(self, dataset: str) -> bool:
        """Create if absent: True when created now, False when it already existed."""

    @abstractmethod
    def delete_dataset(self, dataset: str) -> None:
        """Delete a dataset and everything in it, if present."""

    @abstractmethod
    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        """Column name to BigQuery type (STRING, INT64, ...) of a table or view, or None."""

    def close(self) -> None:
        """Release connections (optional)."""
