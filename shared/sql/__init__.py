"""SQL written once in BigQuery's dialect; identifiers are spliced in only after validation.

Splitting a script and reading a CREATE TABLE's columns need no SQL parser (so Google Cloud
mode does not load sqlglot, which only the embedded warehouse needs to transpile).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from shared.domain.identifiers import dataset_identifier

_DIR = Path(__file__).parent
_CREATE_TABLE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?`?([^`\s(]+)`?\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL
)
_CONSTRAINT = re.compile(r"\s+(?:NOT\s+NULL|DEFAULT|OPTIONS|PRIMARY\s+KEY|COLLATE)\b.*$", re.IGNORECASE | re.DOTALL)


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


def _split(text: str, separator: str, *, angle_brackets: bool = False) -> list[str]:
    """`text` cut at `separator` outside quotes, comments and brackets; comments dropped, parts stripped."""
    openers, closers = ("(<", ")>") if angle_brackets else ("(", ")")
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    depth = 0
    index = 0
    while index < len(text):
        char = text[index]
        if quote is not None:
            current.append(char)
            if char == "\\" and quote != "`" and index + 1 < len(text):
                current.append(text[index + 1])
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
            current.append(char)
        elif text.startswith("--", index) or char == "#":
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            index = len(text) if end < 0 else end + 2
            continue
        elif char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            depth += (char in openers) - (char in closers)
            current.append(char)
        index += 1
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def statements(sql: str) -> list[str]:
    """Split a script into single statements (each adapter runs one at a time)."""
    return _split(sql, ";")


def declared_columns(ddl: str) -> dict[str, dict[str, str]]:
    """Table name to {column: BigQuery type} for every CREATE TABLE in `ddl`."""
    tables: dict[str, dict[str, str]] = {}
    for statement in statements(ddl):
        match = _CREATE_TABLE.match(statement)
        if match is None:
            continue
        columns: dict[str, str] = {}
        for definition in _split(match.group(2), ",", angle_brackets=True):
            name, _, rest = definition.partition(" ")
            columns[name.strip("`")] = " ".join(_CONSTRAINT.sub("", rest).split()).upper()
        tables[match.group(1).rsplit(".", 1)[-1]] = columns
    return tables
