"""Warehouse contract: our BigQuery-dialect SQL behaves the same on every adapter."""

from __future__ import annotations

import pytest

from shared import sql
from shared.handlers.warehouse_setup import ensure_central_tables, expected_central_columns
from shared.ports import Warehouse


def test_ping(warehouse: Warehouse) -> None:
    warehouse.ping()


def test_dataset_lifecycle(warehouse: Warehouse, unique: str) -> None:
    assert warehouse.dataset_exists(unique) is False
    assert warehouse.create_dataset(unique) is True
    assert warehouse.create_dataset(unique) is False
    assert warehouse.dataset_exists(unique) is True
    warehouse.delete_dataset(unique)
    assert warehouse.dataset_exists(unique) is False
    warehouse.delete_dataset(unique)


def test_central_tables_are_created_idempotently_with_declared_columns(warehouse: Warehouse, unique: str) -> None:
    ensure_central_tables(warehouse, unique)
    ensure_central_tables(warehouse, unique)
    for table, columns in expected_central_columns(unique).items():
        assert warehouse.table_columns(unique, table) == columns
    assert warehouse.table_columns(unique, "no_such_table") is None


def test_merge_upserts_instead_of_inserting_twice(warehouse: Warehouse, unique: str) -> None:
    ensure_central_tables(warehouse, unique)
    statement = sql.render("upsert_subscription", central=unique)
    limits = {"daily_limit": 6, "monthly_limit": 180, "concurrent_limit": 3}
    warehouse.execute(statement, {"tenant_id": "t1", "plan_name": "STARTER", "status": "ACTIVE", **limits})
    warehouse.execute(statement, {"tenant_id": "t1", "plan_name": "STARTER", "status": "ACTIVE", **limits})
    warehouse.execute(
        statement,
        {
            "tenant_id": "t1",
            "plan_name": "SCALE",
            "status": "ACTIVE",
            "daily_limit": 100,
            "monthly_limit": 3000,
            "concurrent_limit": 10,
        },
    )
    rows = warehouse.query(
        f"SELECT plan_name, daily_limit FROM `{unique}.tenant_subscriptions` WHERE tenant_id = @tenant_id", {"tenant_id": "t1"}
    )
    assert rows == [{"plan_name": "SCALE", "daily_limit": 100}]


def test_countif_of_no_rows_is_zero_as_in_bigquery(warehouse: Warehouse, unique: str) -> None:
    ensure_central_tables(warehouse, unique)
    rows = warehouse.query(
        f"SELECT COUNT(*) AS n, COUNTIF(status = 'SUCCEEDED') AS ok FROM `{unique}.tenant_pipeline_runs` WHERE tenant_id = @t",
        {"t": "nobody"},
    )
    assert rows == [{"n": 0, "ok": 0}]


def test_view_across_datasets_reads_usage_as_zero_without_a_quota_row(warehouse: Warehouse, unique: str) -> None:
    central, tenant = unique, unique + "_tenant"
    ensure_central_tables(warehouse, central)
    warehouse.create_dataset(tenant)
    warehouse.execute(
        sql.render("upsert_profile", central=central),
        {"tenant_id": tenant, "company_name": "Acme", "admin_email": "a@acme.com", "status": "ACTIVE"},
    )
    warehouse.execute(
        sql.render("upsert_subscription", central=central),
        {
            "tenant_id": tenant,
            "plan_name": "STARTER",
            "status": "ACTIVE",
            "daily_limit": 6,
            "monthly_limit": 180,
            "concurrent_limit": 3,
        },
    )
    warehouse.execute(sql.render("create_comprehensive_view", central=central, dataset=tenant, tenant_id=tenant))
    rows = warehouse.query(sql.render("read_comprehensive_view", dataset=tenant))
    assert len(rows) == 1
    row = rows[0]
    assert (row["pipelines_run_today"], row["quota_status"], float(row["daily_usage_percent"])) == (0, "AVAILABLE", 0.0)


@pytest.mark.parametrize("bad", ["a; DROP TABLE x", "has space", "quote'", "back`tick"])
def test_identifiers_are_validated_before_reaching_sql(bad: str) -> None:
    with pytest.raises(ValueError):
        sql.render("read_comprehensive_view", dataset=bad)


def test_concurrent_redeliveries_of_one_upsert_leave_one_row(warehouse: Warehouse, unique: str) -> None:
    """Two instances handling the same redelivered step at once: MERGE keeps one row per tenant."""
    import threading

    ensure_central_tables(warehouse, unique)
    statement = sql.render("upsert_subscription", central=unique)
    params = {"tenant_id": "t1", "plan_name": "STARTER", "status": "ACTIVE", "daily_limit": 6, "monthly_limit": 180, "concurrent_limit": 3}
    errors: list[Exception] = []

    def upsert() -> None:
        for _ in range(2):
            try:
                warehouse.execute(statement, params)
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=upsert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = warehouse.query(f"SELECT COUNT(*) AS n FROM `{unique}.tenant_subscriptions` WHERE tenant_id = @t", {"t": "t1"})
    assert rows == [{"n": 1}]
