"""The parser-free splitter and column reader (Google Cloud mode loads no sqlglot) agree with sqlglot on every SQL file we ship."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from shared import sql

SQL_FILES = sorted(path.stem for path in Path(sql.__file__).parent.glob("*.sql"))


def _rendered(name: str) -> str:
    return sql.render(name, central="central_ds", dataset="tenant_ds", tenant_id="tenant_ds")


def _canonical(statement: str) -> str:
    [parsed] = [expression for expression in sqlglot.parse(statement, read="bigquery") if expression]
    return parsed.sql(dialect="bigquery", comments=False)


@pytest.mark.parametrize("name", SQL_FILES)
def test_statements_split_every_file_as_sqlglot_does(name: str) -> None:
    script = _rendered(name)
    expected = [expression.sql(dialect="bigquery", comments=False) for expression in sqlglot.parse(script, read="bigquery") if expression]
    assert [_canonical(statement) for statement in sql.statements(script)] == expected


@pytest.mark.parametrize("name", SQL_FILES)
def test_declared_columns_match_sqlglot(name: str) -> None:
    script = _rendered(name)
    expected: dict[str, dict[str, str]] = {}
    for expression in sqlglot.parse(script, read="bigquery"):
        if isinstance(expression, exp.Create) and expression.kind == "TABLE":
            schema = expression.this
            expected[schema.this.name] = {column.name: column.args["kind"].sql(dialect="bigquery") for column in schema.expressions}
    assert sql.declared_columns(script) == expected
