"""The seed session against the deployed topology on emulators (`make emulate`): one process per function."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scripts.emulate import Topology
from scripts.emulators import Emulators, missing_prerequisites
from tests.e2e.test_seed_session import run_seed_session

pytestmark = [pytest.mark.e2e, pytest.mark.emulator]


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    problems = missing_prerequisites()
    if problems:
        if os.environ.get("ONBOARDING_REQUIRE_EMULATORS") == "1":
            pytest.fail("emulators required but unavailable: " + "; ".join(problems), pytrace=False)
        pytest.skip("Google emulators unavailable on this machine: " + "; ".join(problems))
    emulators = Emulators(tmp_path / "emulators")
    env = emulators.start()
    running = Topology(env, tmp_path / "topology")
    try:
        running.start()
        yield running
    finally:
        running.stop()
        emulators.stop()


def _function_logs(topology: Topology) -> str:
    return "\n".join(path.read_text(errors="replace") for path in topology.log_dir.glob("*.log"))


def test_seed_session_on_the_emulated_topology(topology: Topology) -> None:
    health = requests.get(f"{topology.url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["backend"] == "gcp"

    dry = requests.post(
        f"{topology.url}/api/v1/tenants/dryrun",
        json={"tenant_id": "probe_tenant", "company_name": "P", "admin_email": "p@example.com", "subscription_plan": "STARTER"},
        timeout=30,
    ).json()
    checks = {check["name"]: check for check in dry["checks"]}
    assert checks["gcp_credentials"]["passed"] and "emulator mode" in checks["gcp_credentials"]["detail"]
    assert checks["bigquery_connectivity"]["passed"] and "gcp backend" in checks["bigquery_connectivity"]["detail"]
    assert checks["central_tables"]["passed"], checks["central_tables"]

    api_key = run_seed_session(topology.url)
    logs = _function_logs(topology)
    assert api_key not in logs
    # Each step ran in its own function process, reached by a Pub/Sub push.
    for step_function in ("step_subscription", "step_quota", "step_dataset", "step_view"):
        assert (topology.log_dir / f"{step_function}.log").stat().st_size > 0, step_function


def test_unknown_route_on_the_front_is_a_json_404(topology: Topology) -> None:
    response = requests.get(f"{topology.url}/api/v1/nothing/here", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ROUTE_NOT_FOUND"
