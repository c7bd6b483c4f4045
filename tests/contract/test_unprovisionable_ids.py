"""A tenant id the dry run accepts provisions on every warehouse; each name a warehouse reserves is refused.

The candidates come from the engines where they can say them (DuckDB's catalogs, schemas and
keywords) and from Google's documentation for BigQuery. Each runs through the statements the
dataset and view steps run, on each warehouse (the BigQuery half on the emulator).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import sql
from shared.adapters.embedded.duckdb_warehouse import DuckdbWarehouse
from shared.domain.identifiers import BIGQUERY_RESERVED_NAMES, EMBEDDED_RESERVED_NAMES, TENANT_ID_PATTERN, tenant_id_problem
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.ports import Warehouse


def provisioning_error(warehouse: Warehouse, central: str, name: str) -> str | None:
    """What goes wrong running the dataset and view steps' statements for a tenant called `name`, or None."""
    try:
        warehouse.create_dataset(name)
        try:
            for statement in sql.statements(sql.render("tenant_tables", dataset=name)):
                warehouse.execute(statement)
            warehouse.execute(sql.render("create_comprehensive_view", central=central, dataset=name, tenant_id=name))
            warehouse.execute(sql.render("upsert_validation_row", dataset=name), {"id": "probe", "test_message": "probe"})
            if not warehouse.query(sql.render("read_validation_row", dataset=name), {"id": "probe"}):
                return "the validation row was not read back"
            warehouse.query(sql.render("read_comprehensive_view", dataset=name))
        finally:
            warehouse.delete_dataset(name)
    except Exception as error:  # any failure is the answer
        return f"{type(error).__name__}: {error}"[:200]
    return None


def _engine_names(tmp_path: Path) -> dict[str, set[str]]:
    """What an embedded warehouse, opened as the bootstrap opens it, reports about its own names."""
    engine = DuckdbWarehouse(tmp_path / "engine" / "warehouse.duckdb")
    try:
        catalogs = {str(row["name"]) for row in engine.query("SELECT database_name AS name FROM duckdb_databases()")}
        schemas = {str(row["name"]) for row in engine.query("SELECT schema_name AS name FROM duckdb_schemas() WHERE internal")}
        keywords = {
            str(row["name"])
            for row in engine.query("SELECT keyword_name AS name FROM duckdb_keywords() WHERE keyword_category = 'reserved'")
        }
    finally:
        engine.close()
    return {"catalogs": catalogs, "schemas": schemas, "keywords": keywords}


def test_finding5_every_catalog_and_schema_the_embedded_engine_reports_is_reserved(tmp_path: Path) -> None:
    names = _engine_names(tmp_path)
    reported = {name.lower() for name in names["catalogs"] | names["schemas"]}
    assert reported, "the engine reported no names"
    assert reported <= EMBEDDED_RESERVED_NAMES, f"not reserved: {sorted(reported - EMBEDDED_RESERVED_NAMES)}"
    for name in reported:
        assert tenant_id_problem(name) is not None and tenant_id_problem(name.upper()) is not None


def test_finding5_each_reserved_name_fails_where_it_is_reserved_and_each_accepted_name_provisions(
    warehouse: Warehouse, unique: str, tmp_path: Path
) -> None:
    central = unique
    ensure_central_tables(warehouse, central)
    embedded = isinstance(warehouse, DuckdbWarehouse)
    engine = _engine_names(tmp_path)
    candidates = EMBEDDED_RESERVED_NAMES | BIGQUERY_RESERVED_NAMES | {"INFORMATION_SCHEMA", "memory", f"{unique}_ok"}
    if embedded:  # every reserved keyword of the engine; on the emulator a sample, each probe being a dozen API calls
        candidates |= {name for name in engine["keywords"] if TENANT_ID_PATTERN.fullmatch(name)}
    else:
        candidates |= {"select", "table", "from", "order", "group"}

    failures = {name: provisioning_error(warehouse, central, name) for name in sorted(candidates) if name.lower() != central.lower()}

    accepted_but_failing = {name: error for name, error in failures.items() if error and tenant_id_problem(name) is None}
    assert accepted_but_failing == {}, "the dry run would pass ids that cannot be provisioned"
    # Each name reserved for this warehouse is one the engine reports as its own, or one that fails here.
    reported = {name.lower() for name in engine["catalogs"] | engine["schemas"]} if embedded else set()
    reserved_here = EMBEDDED_RESERVED_NAMES if embedded else BIGQUERY_RESERVED_NAMES
    unexplained = sorted(name for name in reserved_here if failures[name] is None and name not in reported)
    assert unexplained == [], "a name reserved for this warehouse is neither the engine's nor failing: the list is stale"
    assert failures[f"{unique}_ok"] is None


def test_finding5_the_central_dataset_is_refused_in_any_case() -> None:
    assert tenant_id_problem("Tenant_Platform", reserved=frozenset({"tenant_platform"})) is not None


@pytest.mark.parametrize("name", sorted(EMBEDDED_RESERVED_NAMES | BIGQUERY_RESERVED_NAMES))
def test_finding5_reserved_names_are_refused_in_every_spelling(name: str) -> None:
    for spelling in (name, name.upper(), name.title()):
        assert tenant_id_problem(spelling) is not None, spelling
