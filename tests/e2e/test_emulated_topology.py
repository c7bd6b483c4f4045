"""The seed session against the deployed topology on emulators (`make emulate`): one process per function."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from scripts.emulate import MAX_DELIVERY_ATTEMPTS, Topology
from scripts.emulators import Emulators, missing_prerequisites
from shared.domain.steps import step_names
from shared.handlers.provisioning import applied_at_onboarding
from tests.e2e.test_seed_session import run_seed_session

pytestmark = [pytest.mark.e2e, pytest.mark.emulator]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """Emulators and the topology, once for this module (each test uses its own tenant)."""
    tmp_path = tmp_path_factory.mktemp("emulated")
    problems = missing_prerequisites()
    if problems:
        if os.environ.get("ONBOARDING_REQUIRE_EMULATORS") == "1":
            pytest.fail("emulators required but unavailable: " + "; ".join(problems), pytrace=False)
        pytest.skip("Google emulators unavailable on this machine: " + "; ".join(problems))
    emulators = Emulators(tmp_path / "emulators")
    env = emulators.start()
    # A short retry policy so a message that keeps failing reaches its dead-letter topic in seconds.
    running = Topology(env, tmp_path / "topology", max_backoff_seconds=2)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        emulators.stop()


def _function_logs(topology: Topology) -> str:
    return "\n".join(path.read_text(errors="replace") for path in topology.log_dir.glob("*.log"))


def _operator(topology: Topology) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {topology.operator_token}"
    return session


def test_seed_session_on_the_emulated_topology(topology: Topology) -> None:
    health = requests.get(f"{topology.url}/healthz", timeout=60)
    assert health.status_code == 200 and health.json()["backend"] == "gcp"

    dry = (
        _operator(topology)
        .post(
            f"{topology.url}/api/v1/tenants/dryrun",
            json={"tenant_id": "probe_tenant", "company_name": "P", "admin_email": "p@example.com", "subscription_plan": "STARTER"},
            timeout=60,
        )
        .json()
    )
    checks = {check["name"]: check for check in dry["checks"]}
    assert checks["gcp_credentials"]["passed"] and "emulator mode" in checks["gcp_credentials"]["detail"]
    assert checks["bigquery_connectivity"]["passed"] and "gcp backend" in checks["bigquery_connectivity"]["detail"]
    assert checks["central_tables"]["passed"], checks["central_tables"]

    api_key = run_seed_session(topology.url, _operator(topology), request_timeout=60, tenant_key_on_operator_route=401)
    logs = _function_logs(topology)
    assert api_key not in logs and topology.operator_token not in logs
    # Each published step ran in its own function process, reached by a Pub/Sub push (the
    # record-only ones, subscription and quota, are done by the onboarding's own commit).
    for step in (name for name in step_names() if name not in applied_at_onboarding()):
        assert (topology.log_dir / f"step_{step}.log").stat().st_size > 0, step


def test_unknown_route_on_the_front_is_a_json_404(topology: Topology) -> None:
    response = requests.get(f"{topology.url}/api/v1/nothing/here", timeout=60)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ROUTE_NOT_FOUND"


def test_the_front_refuses_operator_routes_without_the_operator_credential(topology: Topology) -> None:
    """As API Gateway does: no bearer credential, or a wrong one, is a 401 before any function runs."""
    url = f"{topology.url}/api/v1/dead-letters"
    missing = requests.get(url, timeout=60)
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-operator-token"}, timeout=60)
    for refused in (missing, wrong):
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHORIZED"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
    assert wrong.headers["WWW-Authenticate"].endswith('error="invalid_token"')
    assert _operator(topology).get(url, timeout=60).status_code == 200
    # The function checks again: a request that bypasses the front still needs the credential.
    dead_letters = next(function for function in topology.functions if function.name == "dead_letters")
    direct = f"http://127.0.0.1:{dead_letters.port}/api/v1/dead-letters"
    assert requests.get(direct, timeout=60).status_code == 401
    assert requests.get(direct, headers={"X-Forwarded-Authorization": f"Bearer {topology.operator_token}"}, timeout=60).status_code == 200
    # A tenant route passes the front with the tenant's key only; the function decides.
    overview = requests.get(
        f"{topology.url}/api/v1/tenants/nobody_here/overview", headers={"X-API-Key": "nobody_here_api_AAAAAAAAAAAAAAAA"}, timeout=60
    )
    assert overview.status_code == 401 and overview.headers["WWW-Authenticate"].startswith("ApiKey ")


def test_a_step_that_keeps_failing_is_dead_lettered_by_pubsub(topology: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    """A view step delivered before its prerequisites fails (500) on every push; after the
    subscription's max_delivery_attempts Pub/Sub moves it to the dead-letter topic, whose push
    reaches step_dead_letter, which marks the step and the tenant FAILED."""
    import dataclasses
    import time

    from schemas.http import OnboardRequest
    from shared.bootstrap import build_gcp_services, load_settings
    from shared.handlers.onboard import onboard
    from shared.handlers.step_commands import publish_step
    from shared.handlers.tenant_store import load_tenant
    from shared.ports import EventBus

    class Withheld(EventBus):
        """Keeps the prerequisite step commands from being published."""

        def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
            return "withheld"

    for name, value in topology.env.items():
        monkeypatch.setenv(name, value)
    body = {"tenant_id": "doomed_tenant", "company_name": "D", "admin_email": "d@example.com", "subscription_plan": "STARTER"}
    assert _operator(topology).post(f"{topology.url}/api/v1/tenants/dryrun", json=body, timeout=60).json()["ready_for_onboarding"]
    services = build_gcp_services(load_settings())
    try:
        onboard(OnboardRequest.model_validate(body), None, dataclasses.replace(services, bus=Withheld()))
        state = load_tenant(services, "doomed_tenant")
        assert state is not None
        publish_step(services, state, "view")
        deadline = time.monotonic() + 90
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            status = _operator(topology).get(f"{topology.url}/api/v1/tenants/doomed_tenant", timeout=60).json()
            if status["status"] == "FAILED":
                break
            time.sleep(0.5)
    finally:
        services.close()
    assert status["status"] == "FAILED", status
    assert "step view failed" in str(status["error"])
    steps = {step["name"]: step for step in status["steps"]}  # type: ignore[attr-defined]
    assert steps["view"]["status"] == "FAILED"
    view_log = (topology.log_dir / "step_view.log").read_text()
    assert view_log.count("RuntimeError: view step delivered before its prerequisites were done") >= MAX_DELIVERY_ATTEMPTS


def test_one_onboardings_lines_in_every_step_function_carry_the_trace_of_its_request(topology: Topology) -> None:
    """Through the front, Pub/Sub push and one process per function: the trace travels in message attributes."""
    import json
    import time

    trace_id = "5ad2c8f3e1b04c7f9a6d0b1e2f3a4b5c"
    body = {"tenant_id": "traced_tenant", "company_name": "T", "admin_email": "t@example.com", "subscription_plan": "STARTER"}
    operator = _operator(topology)
    assert operator.post(f"{topology.url}/api/v1/tenants/dryrun", json=body, timeout=60).json()["ready_for_onboarding"]
    created = operator.post(
        f"{topology.url}/api/v1/tenants/onboard?wait=60",
        json=body,
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        timeout=120,
    )
    assert created.status_code == 201, created.text

    def done_lines(step_function: str) -> list[dict[str, str]]:
        text = (topology.log_dir / f"{step_function}.log").read_text(errors="replace")
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("message") == "step done" and line.get("tenant_id") == "traced_tenant"]

    expected = f"projects/{topology.env['GOOGLE_CLOUD_PROJECT']}/traces/{trace_id}"
    for step_function in ("step_subscription", "step_quota", "step_dataset", "step_view"):
        deadline = time.monotonic() + 30  # the view's line follows the commit the wait saw ACTIVE in
        while not done_lines(step_function) and time.monotonic() < deadline:
            time.sleep(0.2)
        done = done_lines(step_function)
        assert done, step_function
        assert {line["logging.googleapis.com/trace"] for line in done} == {expected}
