"""Warehouse port: BigQuery-dialect SQL with named @parameters, plus dataset management."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from shared.ports.permissions import (
    BIGQUERY_DATASET_CREATE,
    BIGQUERY_DATASET_DELETE,
    BIGQUERY_DATASET_GET,
    BIGQUERY_QUERY,
    BIGQUERY_STREAMING,
    BIGQUERY_TABLE_GET,
    create_dataset,
    dataset,
    delete_dataset,
    nothing,
    ping,
    requires,
    sql_job,
    table_append,
    table_get,
)

Row = dict[str, Any]


class Warehouse(ABC):
    """Runs the SQL we write once in BigQuery's dialect; a dataset holds tables and views."""

    @requires(BIGQUERY_QUERY, ping)
    @abstractmethod
    def ping(self) -> None:
        """Run `SELECT 1`; raise BackendError if the warehouse cannot answer."""

    @requires(BIGQUERY_QUERY, sql_job)
    @abstractmethod
    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run a query (BigQuery dialect, @named parameters) and return every row."""

    @requires(BIGQUERY_QUERY, sql_job)
    @abstractmethod
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """Run DDL or DML (BigQuery dialect) to completion."""

    @requires(BIGQUERY_STREAMING, table_append)
    @abstractmethod
    def append_rows(self, dataset: str, table: str, rows: list[Row]) -> None:
        """Append `rows` to a table without DML: no per-table DML limit applies.

        Values are str, int, float, bool, date, datetime or None. At least once: a retried
        call may append a row twice, so tables fed this way are read through latest-row views.
        """

    @requires(BIGQUERY_DATASET_GET, dataset("bigquery.datasets.get"))
    @abstractmethod
    def dataset_exists(self, dataset: str) -> bool:
        """Whether the dataset exists."""

    @requires(BIGQUERY_DATASET_CREATE, create_dataset)
    @abstractmethod
    def create_dataset(self, dataset: str) -> bool:
        """Create if absent: True when created now, False when it already existed."""

    @requires(BIGQUERY_DATASET_DELETE, delete_dataset)
    @abstractmethod
    def delete_dataset(self, dataset: str) -> None:
        """Delete a dataset and everything in it, if present."""

    @requires(BIGQUERY_TABLE_GET, table_get)
    @abstractmethod
    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        """Column name to BigQuery type (STRING, INT64, ...) of a table or view, or None."""

    @requires(BIGQUERY_DATASET_DELETE, nothing)  # no BigQuery call: deleted data ages out of time travel
    def erase_deleted(self) -> None:
        """Leave nothing of deleted rows and datasets in this warehouse's own files (a purge calls it).

        BigQuery has no files of ours; it keeps deleted data for its time-travel window and
        fail-safe period (see docs/lifetimes.md). The embedded warehouse overrides it.
        """

    def close(self) -> None:
        """Release connections (optional)."""
