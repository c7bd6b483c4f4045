"""Scripts split and CREATE TABLE columns read without a SQL parser (Google Cloud mode loads none)."""

from __future__ import annotations

from shared import sql


def test_a_script_splits_at_semicolons_outside_strings_identifiers_and_comments() -> None:
    script = "-- two statements; not three\nSELECT 'a;b' AS `x;y`; /* ; */ SELECT 2 WHERE 1 < 2;\n# trailing; comment\n"
    assert sql.statements(script) == ["SELECT 'a;b' AS `x;y`", "SELECT 2 WHERE 1 < 2"]


def test_declared_columns_read_every_create_table_with_its_types() -> None:
    columns = sql.declared_columns(sql.render("central_tables", central="c"))
    assert set(columns) == {"tenant_profiles", "tenant_subscriptions", "tenant_usage_quotas", "tenant_pipeline_runs"}
    assert columns["tenant_usage_quotas"]["usage_date"] == "DATE"
    assert columns["tenant_subscriptions"]["daily_limit"] == "INT64"
    assert columns["tenant_pipeline_runs"]["finished_at"] == "TIMESTAMP"
    nested = sql.declared_columns("CREATE TABLE `d.t` (a ARRAY<STRING> NOT NULL, b NUMERIC(10, 2) OPTIONS(description='x'))")
    assert nested == {"t": {"a": "ARRAY<STRING>", "b": "NUMERIC(10, 2)"}}
