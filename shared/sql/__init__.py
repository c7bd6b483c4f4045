"""SQL written once in BigQuery's dialect; identifiers are spliced in only after validation."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlglot
from sqlglot import exp

from shared.domain.identifiers import dataset_identifier

_DIR = Path(__file__).parent


@cache
def _template(name: str) -> str:
    return (_DIR / f"{name}.sql").read_text()


def render(name: str, *, central: str = "", dataset: str = "", tenant_id: str = "") -> str:
    """The statement(s) in `name`.sql with validated dataset names filled in."""
    return _template(name).format(
        central=dataset_identifier(central) if central else "",
        dataset=dataset_identifier(dataset) if dataset else "",
        tenant_id=dataset_identifier(tenant_id) if tenant_id else "",
    )


def statements(sql: str) -> list[str]:
    """Split a script into single statements (each adapter runs one at a time)."""
    return [expression.sql(dialect="bigquery") for expression in sqlglot.parse(sql, read="bigquery") if expression]


def declared_columns(ddl: str) -> dict[str, dict[str, str]]:
    """Table name to {column: BigQuery type} for every CREATE TABLE in `ddl`."""
    tables: dict[str, dict[str, str]] = {}
    for expression in sqlglot.parse(ddl, read="bigquery"):
        if not isinstance(expression, exp.Create) or expression.kind != "TABLE":
            continue
        schema = expression.this
        table_name = schema.this.name
        tables[table_name] = {column.name: column.args["kind"].sql(dialect="bigquery") for column in schema.expressions}
    return tables
