"""The domain and handlers never import a cloud SDK; functions stay thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOUD_FREE = ["shared/domain", "shared/handlers", "shared/ports", "schemas"]
FORBIDDEN = ("google.cloud", "google.api_core", "duckdb", "sqlite3", "functions_framework", "flask")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", CLOUD_FREE)
def test_core_packages_import_no_backend(folder: str) -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / folder).rglob("*.py")
        for name in _imports(path)
        if name.startswith(FORBIDDEN)
    }
    assert not offenders


def test_function_modules_hold_no_sql_and_no_adapter() -> None:
    for path in (ROOT / "functions").glob("*.py"):
        text = path.read_text()
        assert "SELECT " not in text and "MERGE " not in text, path
        assert "shared.adapters.gcp" not in text, path
