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


# Handler modules that serve several handlers: the floor below the command and event handlers.
HANDLER_FLOOR = {
    "analytics_copy",
    "checks",
    "dead_letter_store",
    "lifecycle",
    "provisioning",
    "publishing",
    "run_records",
    "step_commands",
    "tenant_keys",
    "tenant_store",
    "warehouse_setup",
}
FILE_READS = ("open", "read_text", "read_bytes", "write_text", "write_bytes", "safe_load", "load")


def _handler_modules() -> dict[str, Path]:
    return {path.stem: path for path in (ROOT / "shared" / "handlers").glob("*.py") if path.stem != "__init__"}


@pytest.mark.parametrize("folder", ["shared/domain", "shared/handlers", "shared/ports"])
def test_the_domain_reads_no_file_and_no_yaml(folder: str) -> None:
    """Configuration reaches the domain and the handlers as values from shared.bootstrap; they open nothing."""
    offenders = set()
    for path in (ROOT / folder).rglob("*.py"):
        tree = ast.parse(path.read_text())
        offenders |= {
            f"{path.relative_to(ROOT)}: import {name}" for name in _imports(path) if name.split(".")[0] in ("yaml", "pathlib", "io")
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called in FILE_READS:
                    offenders.add(f"{path.relative_to(ROOT)}:{node.lineno}: {called}()")
    assert not offenders


def test_only_the_bootstrap_reads_config_files() -> None:
    """yaml is parsed in one place: the bootstrap."""
    readers = {
        str(path.relative_to(ROOT))
        for folder in ("shared", "functions", "schemas")
        for path in (ROOT / folder).rglob("*.py")
        if "yaml" in _imports(path)
    } | ({"main.py"} if "yaml" in _imports(ROOT / "main.py") else set())
    assert readers == {"shared/bootstrap.py"}


def test_a_handler_borrows_nothing_from_a_sibling_handler() -> None:
    """What two handlers need lives a floor down (HANDLER_FLOOR), never in one of them."""
    modules = _handler_modules()
    assert set(modules) >= HANDLER_FLOOR, sorted(HANDLER_FLOOR - set(modules))
    offenders = set()
    for name, path in modules.items():
        for imported in _imports(path):
            if not imported.startswith("shared.handlers."):
                continue
            target = imported.removeprefix("shared.handlers.").split(".")[0]
            if target not in HANDLER_FLOOR:
                offenders.add(f"shared/handlers/{name}.py imports {imported}: move what it needs to a module of HANDLER_FLOOR")
    assert not offenders


def test_the_floor_serves_handlers_and_imports_none() -> None:
    """A floor module never reaches up into a command or event handler."""
    modules = _handler_modules()
    offenders = {
        f"shared/handlers/{name}.py imports {imported}"
        for name in HANDLER_FLOOR
        for imported in _imports(modules[name])
        if imported.startswith("shared.handlers.") and imported.removeprefix("shared.handlers.").split(".")[0] not in HANDLER_FLOOR
    }
    assert not offenders


def test_google_cloud_adapters_are_built_by_the_bootstrap_only() -> None:
    """Outside the gcp adapters package, only shared/bootstrap.py reaches shared.adapters.gcp.wiring."""
    gcp = ROOT / "shared" / "adapters" / "gcp"
    users = {
        str(path.relative_to(ROOT))
        for folder in ("shared", "functions", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if gcp not in path.parents and "shared.adapters.gcp.wiring" in path.read_text()
    }
    assert users == {"shared/bootstrap.py"}


def test_the_bootstrap_imports_backend_adapters_only_inside_their_branch() -> None:
    """A module-level import of an adapter package would load DuckDB or the Google libraries in every mode."""
    tree = ast.parse((ROOT / "shared" / "bootstrap.py").read_text())
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module)
    assert not {
        name for name in top_level if name.startswith(("shared.adapters.embedded", "shared.adapters.gcp", "google", "duckdb", "sqlglot"))
    }
