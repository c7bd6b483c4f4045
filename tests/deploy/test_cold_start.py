"""A deployed function carries and imports only what Google Cloud mode needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scripts.stage_source import EMBEDDED_MARKER, runtime_requirements

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_ONLY = {"duckdb", "sqlglot"}


def _loaded_after(code: str) -> set[str]:
    """Top-level modules loaded by a fresh interpreter in Google Cloud mode after running `code`."""
    env = {**os.environ, "ONBOARDING_BACKEND": "gcp"}
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_deployed_requirements_leave_out_the_embedded_backends() -> None:
    # Given requirements.txt, with DuckDB and sqlglot in their own section
    full = (ROOT / "requirements.txt").read_text()
    assert EMBEDDED_MARKER in full.splitlines()
    # When it is cut for deployment
    deployed = {line.split("==")[0].lower() for line in runtime_requirements(full).splitlines() if "==" in line}
    # Then neither ships, and every Google client does
    assert not deployed & EMBEDDED_ONLY
    assert {"google-cloud-bigquery", "google-cloud-firestore", "google-cloud-pubsub", "google-cloud-kms", "functions-framework"} <= deployed


def test_google_cloud_mode_never_imports_an_embedded_backend() -> None:
    loaded = _loaded_after("import main\nfor name in main.__all__: getattr(main, name)\nimport shared.adapters.gcp.wiring")
    assert "google.cloud.bigquery" in loaded  # the probe did load Google Cloud mode
    assert not {name for name in loaded if name.split(".")[0] in EMBEDDED_ONLY}


def test_an_entry_point_loads_its_own_module_only() -> None:
    loaded = _loaded_after("import main\nmain.step_quota")
    assert "functions.steps" in loaded
    assert "functions.api" not in loaded and "functions.billing" not in loaded
