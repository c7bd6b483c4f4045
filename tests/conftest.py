"""Shared fixtures: settings on a temporary data dir, embedded services, the local platform."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.bootstrap import build_embedded_services, load_settings
from shared.config import Settings
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.services import Services

SEED_REQUEST: dict[str, Any] = {
    "tenant_id": "customer_123",
    "company_name": "Acme Corporation",
    "admin_email": "admin@acme.com",
    "subscription_plan": "PROFESSIONAL",
}

# The seed tenant's row of tenant_comprehensive_view once onboarding is done.
SEED_OVERVIEW: dict[str, Any] = {
    "tenant_id": "customer_123",
    "company_name": "Acme Corporation",
    "admin_email": "admin@acme.com",
    "tenant_status": "ACTIVE",
    "plan_name": "PROFESSIONAL",
    "subscription_status": "ACTIVE",
    "subscription_daily_limit": 25,
    "subscription_monthly_limit": 750,
    "subscription_concurrent_limit": 5,
    "pipelines_run_today": 1,
    "pipelines_succeeded_today": 1,
    "pipelines_failed_today": 0,
    "quota_status": "AVAILABLE",
    "daily_usage_percent": 4.0,
}


def fast_settings(data_dir: Path, **env: str) -> Settings:
    """Settings for tests: embedded backends under `data_dir`, a quick retry policy."""
    base = {
        "ONBOARDING_DATA_DIR": str(data_dir),
        "ONBOARDING_BUS_MIN_BACKOFF_SECONDS": "0.01",
        "ONBOARDING_BUS_MAX_BACKOFF_SECONDS": "0.05",
        "ONBOARDING_BUS_MAX_ATTEMPTS": "3",
        "ONBOARDING_BUS_ACK_DEADLINE_SECONDS": "10",
    }
    base.update(env)
    return load_settings(base)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fast_settings(tmp_path / "data")


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_embedded_services(settings)
    ensure_central_tables(built.warehouse, built.central)
    yield built
    built.close()


@pytest.fixture
def platform(settings: Settings) -> Iterator[Any]:
    from functions.local import LocalPlatform

    local = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
    local.start()
    yield local
    local.stop()


@pytest.fixture
def client(platform: Any) -> FlaskClient:
    return platform.app.test_client()


def onboard_seed(client: FlaskClient, request: dict[str, Any] | None = None, wait: int = 20) -> dict[str, Any]:
    """Dry run then onboard (waiting for the outcome); returns the onboard response body."""
    body = request or SEED_REQUEST
    dry = client.post("/api/v1/tenants/dryrun", json=body)
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json()["ready_for_onboarding"], dry.get_json()
    response = client.post(f"/api/v1/tenants/onboard?wait={wait}", json=body)
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


EMULATOR_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how long the session's emulators took to start."""
    for line in EMULATOR_REPORT:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def gcp_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Addresses of the Google emulators: those already exported, or ones started for this session.

    Tests that use them are marked `emulator`. Without Java or the gcloud emulators they skip,
    saying so, unless ONBOARDING_REQUIRE_EMULATORS=1 (set by .ci/run) turns that into a failure.
    """
    from scripts.emulators import ENDPOINT_VARIABLES, KMS_KEY, PROJECT, Emulators, missing_prerequisites

    if all(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        yield {name: os.environ[name] for name in ENDPOINT_VARIABLES} | {
            "GOOGLE_CLOUD_PROJECT": os.environ.get("GOOGLE_CLOUD_PROJECT", PROJECT),
            "ONBOARDING_KMS_KEY_NAME": os.environ.get("ONBOARDING_KMS_KEY_NAME", KMS_KEY),
        }
        return
    problems = missing_prerequisites()
    if problems:
        if os.environ.get("ONBOARDING_REQUIRE_EMULATORS") == "1":
            pytest.fail("emulators required but unavailable: " + "; ".join(problems), pytrace=False)
        pytest.skip("Google emulators unavailable on this machine: " + "; ".join(problems))
    emulators = Emulators(tmp_path_factory.mktemp("emulators"))
    env = emulators.start()
    EMULATOR_REPORT.append(emulators.describe_start())
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        emulators.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
