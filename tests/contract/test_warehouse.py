"""Warehouse contract: our BigQuery-dialect SQL behaves the same on every adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import sql
from shared.handlers.warehouse_setup import ensure_central_tables, expected_central_columns
from shared.ports import BackendError, Warehouse


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


def _subscription(tenant_id: str, plan: str, daily: int, version: int) -> dict[str, Any]:
    moment = datetime(2026, 3, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=version)
    return {
        "tenant_id": tenant_id,
        "plan_name": plan,
        "status": "ACTIVE",
        "daily_limit": daily,
        "monthly_limit": daily * 30,
        "concurrent_limit": 3,
        "started_at": moment,
        "updated_at": moment,
        "version": version,
        "recorded_at": moment,
    }


def _profile(tenant_id: str, version: int) -> dict[str, Any]:
    moment = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    return {
        "tenant_id": tenant_id,
        "company_name": "Acme",
        "admin_email": "a@acme.com",
        "status": "ACTIVE",
        "created_at": moment,
        "updated_at": moment,
        "version": version,
        "recorded_at": moment,
    }


def test_appended_rows_read_through_the_latest_view_newest_version_first(warehouse: Warehouse, unique: str) -> None:
    ensure_central_tables(warehouse, unique)
    warehouse.append_rows(unique, "tenant_subscriptions", [_subscription("t1", "STARTER", 6, 1)])
    warehouse.append_rows(unique, "tenant_subscriptions", [_subscription("t1", "SCALE", 100, 3), _subscription("t2", "STARTER", 6, 1)])
    warehouse.append_rows(unique, "tenant_subscriptions", [_subscription("t1", "PROFESSIONAL", 25, 2)])  # late, older
    rows = warehouse.query(
        f"SELECT tenant_id, plan_name, daily_limit, version FROM `{unique}.tenant_subscriptions_latest` ORDER BY tenant_id"
    )
    assert rows == [
        {"tenant_id": "t1", "plan_name": "SCALE", "daily_limit": 100, "version": 3},
        {"tenant_id": "t2", "plan_name": "STARTER", "daily_limit": 6, "version": 1},
    ]
    warehouse.append_rows(unique, "tenant_subscriptions", [])  # nothing to append is no call at all


def test_appending_to_a_missing_table_is_an_error(warehouse: Warehouse, unique: str) -> None:
    with pytest.raises(BackendError):
        warehouse.append_rows(unique, "no_such_table", [_profile("t1", 1)])


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
    warehouse.append_rows(central, "tenant_profiles", [_profile(tenant, 1)])
    warehouse.append_rows(central, "tenant_subscriptions", [_subscription(tenant, "STARTER", 6, 1)])
    warehouse.execute(sql.render("create_comprehensive_view", central=central, dataset=tenant, tenant_id=tenant))
    rows = warehouse.query(sql.render("read_comprehensive_view", dataset=tenant))
    assert len(rows) == 1
    row = rows[0]
    assert (row["pipelines_run_today"], row["quota_status"], float(row["daily_usage_percent"])) == (0, "AVAILABLE", 0.0)
    assert (row["plan_name"], row["subscription_daily_limit"], row["tenant_status"]) == ("STARTER", 6, "ACTIVE")


@pytest.mark.parametrize("bad", ["a; DROP TABLE x", "has space", "quote'", "back`tick"])
def test_identifiers_are_validated_before_reaching_sql(bad: str) -> None:
    with pytest.raises(ValueError):
        sql.render("read_comprehensive_view", dataset=bad)


def test_concurrent_redeliveries_of_one_merge_leave_one_row(warehouse: Warehouse, unique: str) -> None:
    """Two instances handling the same redelivered step at once: MERGE keeps one validation row."""
    import threading

    warehouse.create_dataset(unique)
    for statement in sql.statements(sql.render("tenant_tables", dataset=unique)):
        warehouse.execute(statement)
    statement = sql.render("upsert_validation_row", dataset=unique)
    params = {"id": "v1", "test_message": "validation"}
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
    rows = warehouse.query(f"SELECT COUNT(*) AS n FROM `{unique}.onboarding_validation_test` WHERE id = @id", {"id": "v1"})
    assert rows == [{"n": 1}]


def test_concurrent_appends_of_one_row_read_as_one(warehouse: Warehouse, unique: str) -> None:
    """Two instances appending the same copy row at once (a redelivery): the latest view shows it once."""
    import threading

    ensure_central_tables(warehouse, unique)
    threads = [threading.Thread(target=warehouse.append_rows, args=(unique, "tenant_profiles", [_profile("t1", 4)])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = warehouse.query(f"SELECT COUNT(*) AS n FROM `{unique}.tenant_profiles_latest` WHERE tenant_id = @t", {"t": "t1"})
    assert rows == [{"n": 1}]
