"""Idempotent creation of the central dataset and tables (the bootstrap command)."""

from __future__ import annotations

from functools import lru_cache

from shared import sql
from shared.ports import Warehouse


@lru_cache(maxsize=8)
def expected_central_columns(central: str) -> dict[str, dict[str, str]]:
    """Each central table's columns, read from the DDL we run (one source of truth)."""
    return sql.declared_columns(sql.render("central_tables", central=central))


def ensure_central_tables(warehouse: Warehouse, central: str) -> list[str]:
    """Create the central dataset and its four tables if absent; returns the table names."""
    warehouse.create_dataset(central)
    for statement in sql.statements(sql.render("central_tables", central=central)):
        warehouse.execute(statement)
    return list(expected_central_columns(central))
