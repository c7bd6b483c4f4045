"""Each backend loads only its own libraries: Google Cloud mode never imports DuckDB or sqlglot, embedded mode no Google client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Imports main as the functions framework does, builds the process's services, reports what got loaded.
PROBE = """
import json, sys
import main
from shared.entrypoints.runtime import get_services
get_services().close()
print(json.dumps(sorted(sys.modules)))
"""
EMBEDDED_ONLY = ("duckdb", "sqlglot", "shared.adapters.embedded")
GOOGLE_ONLY = (
    "google.cloud.bigquery",
    "google.cloud.firestore",
    "google.cloud.pubsub",
    "google.cloud.kms",
    "google.api_core",
    "google.auth",
    "grpc",
    "shared.adapters.gcp",
)
_BACKEND_VARIABLES = (
    "ONBOARDING_",
    "GOOGLE_CLOUD_PROJECT",
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "BIGQUERY_API_ENDPOINT",
    "KMS_API_ENDPOINT",
)


def _loaded_modules(env: dict[str, str]) -> set[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith(_BACKEND_VARIABLES)}
    command = [sys.executable, "-c", PROBE]
    result = subprocess.run(
        command, check=False, cwd=ROOT, env={**clean, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _matching(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {name for name in modules if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)}


def test_google_cloud_mode_loads_no_duckdb_no_sqlglot_no_embedded_adapter() -> None:
    # Unreachable emulator addresses: the clients are built, never called, so no credentials are needed.
    modules = _loaded_modules(
        {
            "ONBOARDING_BACKEND": "gcp",
            "GOOGLE_CLOUD_PROJECT": "lazy-imports",
            "ONBOARDING_KMS_KEY_NAME": "projects/lazy-imports/locations/global/keyRings/r/cryptoKeys/k",
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
            "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
            "BIGQUERY_API_ENDPOINT": "http://127.0.0.1:9",
            "KMS_API_ENDPOINT": "http://127.0.0.1:9",
        }
    )
    assert "shared.adapters.gcp.wiring" in modules and "google.cloud.bigquery" in modules
    assert not _matching(modules, EMBEDDED_ONLY)


def test_embedded_mode_loads_no_google_cloud_client(tmp_path: Path) -> None:
    modules = _loaded_modules({"ONBOARDING_BACKEND": "embedded", "ONBOARDING_DATA_DIR": str(tmp_path / "data")})
    assert "shared.adapters.embedded.duckdb_warehouse" in modules and "duckdb" in modules
    assert not _matching(modules, GOOGLE_ONLY)
