"""SQL written once in BigQuery's dialect; identifiers are spliced in only after validation.

Splitting a script and reading a CREATE TABLE's columns need no SQL parser for the files we
write, so Google Cloud mode runs without sqlglot (only the DuckDB adapter transpiles);
tests/unit/test_sql.py checks both against sqlglot for every file here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

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


def _code_and_quoted(sql: str) -> Iterator[tuple[str, bool]]:
    """The script in pieces, each either code or a quoted literal or identifier; `--` comments dropped."""
    position = 0
    for match in re.finditer(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|--[^\n]*", sql):
        yield sql[position : match.start()], False
        if not match.group().startswith("--"):
            yield match.group(), True
        position = match.end()
    yield sql[position:], False


def _split_top_level(text: str, separator: str, brackets: str = "") -> list[str]:
    """`text` split at `separator` where it is not quoted, nor inside a pair of `brackets` (e.g. "()<>")."""
    opening, closing = brackets[0::2], brackets[1::2]
    parts, current, depth = [], "", 0
    for piece, quoted in _code_and_quoted(text):
        if quoted:
            current += piece
            continue
        for char in piece:
            depth += (char in opening) - (char in closing)
            if char == separator and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += char
    return [part.strip() for part in [*parts, current] if part.strip()]


def statements(sql: str) -> list[str]:
    """Split a script into single statements (each adapter runs one at a time)."""
    return _split_top_level(sql, ";")


_CREATE_TABLE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?([\w.-]+)`?\s*\((.*)\)\s*$", re.I | re.S)


def declared_columns(ddl: str) -> dict[str, dict[str, str]]:
    """Table name to {column: BigQuery type} for every CREATE TABLE in `ddl`."""
    tables: dict[str, dict[str, str]] = {}
    for statement in statements(ddl):
        match = _CREATE_TABLE.match(statement)
        if match is None:
            continue
        table_name = match.group(1).rsplit(".", 1)[-1]
        columns = (column.split(None, 1) for column in _split_top_level(match.group(2), ",", "()<>[]"))
        tables[table_name] = {name.strip("`"): _column_type(definition) for name, definition in columns}
    return tables


def _column_type(definition: str) -> str:
    """The type at the start of a column definition, e.g. `INT64` of `INT64 NOT NULL`, with nested brackets whole."""
    depth = 0
    for index, char in enumerate(definition):
        depth += (char in "(<") - (char in ")>")
        if char.isspace() and depth == 0:
            kind = definition[:index]
            break
    else:
        kind = definition
    return kind.upper() if kind.isalnum() else kind
