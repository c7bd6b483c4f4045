"""DuckdbWarehouse: runs our BigQuery-dialect SQL on an embedded DuckDB file through sqlglot.

A BigQuery dataset is a DuckDB schema; `dataset.table` names carry over unchanged.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from shared.ports import BackendUnavailable, Row, TransactionConflict, Warehouse

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


class DuckdbWarehouse(Warehouse):
    """One DuckDB database file per process; writes are serialized, reads run in parallel."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._root = duckdb.connect(str(path))
        except duckdb.IOException as error:
            raise BackendUnavailable(f"cannot open warehouse file {path.name}: {error}") from error
        self._root.execute("SET TimeZone='UTC'")
        self._local = threading.local()
        self._write_lock = threading.Lock()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._root.cursor()
            cursor.execute("SET TimeZone='UTC'")
            self._local.cursor = cursor
        return cursor

    def _run(self, sql: str, params: dict[str, Any] | None) -> duckdb.DuckDBPyConnection:
        try:
            return self._cursor().execute(to_duckdb(sql), params or None)
        except duckdb.TransactionException as error:
            raise TransactionConflict(str(error)) from error
        except duckdb.IOException as error:
            raise BackendUnavailable(str(error)) from error

    def ping(self) -> None:
        self.query("SELECT 1 AS ok")

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        result = self._run(sql, params)
        columns = [column[0] for column in result.description or []]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._write_lock:
            self._run(sql, params)

    def dataset_exists(self, dataset: str) -> bool:
        rows = self._cursor().execute("SELECT 1 FROM duckdb_schemas() WHERE lower(schema_name) = lower(?)", [dataset])
        return rows.fetchone() is not None

    def create_dataset(self, dataset: str) -> bool:
        with self._write_lock:
            if self.dataset_exists(dataset):
                return False
            self._cursor().execute(f'CREATE SCHEMA "{_identifier(dataset)}"')
            return True

    def delete_dataset(self, dataset: str) -> None:
        with self._write_lock:
            self._cursor().execute(f'DROP SCHEMA IF EXISTS "{_identifier(dataset)}" CASCADE')

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        rows = (
            self._cursor()
            .execute(
                "SELECT column_name, data_type FROM duckdb_columns() "
                "WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?) ORDER BY column_index",
                [dataset, table],
            )
            .fetchall()
        )
        if not rows:
            return None
        return {str(name): _bigquery_type(str(kind)) for name, kind in rows}

    def close(self) -> None:
        self._root.close()


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError("dataset names are letters, digits and underscores")
    return name
