"""Idempotent creation of the central dataset and tables (the bootstrap command), and their migrations."""

from __future__ import annotations

import logging
from functools import lru_cache

from shared import sql
from shared.ports import Warehouse
from shared.services import TENANTS, Services

logger = logging.getLogger(__name__)
USAGE_QUOTAS = "tenant_usage_quotas"
# The first columns of tenant_usage_quotas, renamed by `migrate_usage_quotas`.
_FIRST_USAGE_COLUMN = "pipelines_run"


@lru_cache(maxsize=8)
def expected_central_columns(central: str) -> dict[str, dict[str, str]]:
    """Each central table's columns, read from the DDL we run (one source of truth)."""
    return sql.declared_columns(sql.render("central_tables", central=central))


def migrate_usage_quotas(warehouse: Warehouse, central: str) -> bool:
    """Rename and add tenant_usage_quotas' columns in a table created before they changed; True if it did."""
    columns = warehouse.table_columns(central, USAGE_QUOTAS)
    if columns is None or _FIRST_USAGE_COLUMN not in columns:
        return False
    for statement in sql.statements(sql.render("migrate_usage_quotas", central=central)):
        warehouse.execute(statement)
    logger.warning("tenant_usage_quotas migrated to the usage columns", extra={"dataset": central})
    return True


def ensure_central_tables(warehouse: Warehouse, central: str) -> list[str]:
    """Create the central dataset and its four tables if absent (migrating older ones); returns the table names."""
    warehouse.create_dataset(central)
    migrate_usage_quotas(warehouse, central)
    for statement in sql.statements(sql.render("central_tables", central=central)):
        warehouse.execute(statement)
    return list(expected_central_columns(central))


def bootstrap_warehouse(services: Services) -> list[str]:
    """The central tables, migrated if need be; after a migration every tenant's view is created again.

    A tenant's view names the quota columns, so one created before the migration would fail on
    the renamed columns until it is replaced (CREATE OR REPLACE VIEW: idempotent).
    """
    migrated = migrate_usage_quotas(services.warehouse, services.central)
    tables = ensure_central_tables(services.warehouse, services.central)
    if migrated:
        recreated = recreate_tenant_views(services)
        logger.warning("tenant views created again after the migration", extra={"views": recreated})
    return tables


def recreate_tenant_views(services: Services) -> int:
    """CREATE OR REPLACE every provisioned tenant's comprehensive view; returns how many."""
    done = 0
    for tenant_id, raw in services.documents.scan(TENANTS, "created_at"):
        view = (raw.get("steps") or {}).get("view") or {}
        if view.get("status") != "DONE" or not services.warehouse.dataset_exists(tenant_id):
            continue
        statement = sql.render("create_comprehensive_view", central=services.central, dataset=tenant_id, tenant_id=tenant_id)
        services.warehouse.execute(statement)
        done += 1
    return done
