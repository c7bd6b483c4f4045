"""The seed session (docs/http-api.md, with curl) against the real server started with `make run`."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.conftest import SEED_OVERVIEW, SEED_REQUEST
from tests.e2e.server import RunningServer

pytestmark = pytest.mark.e2e


def run_seed_session(url: str, operator: requests.Session, request_timeout: float = 10, tenant_key_on_operator_route: int = 403) -> str:
    """The seed session against `url`: dry run, onboard, status, overview, duplicate; returns the API key.

    `operator` sends the operator's credential; the overview is called with the tenant's key only.
    A tenant's key on an operator route is a 403 from the function, but a front door (like API
    Gateway) that checks only the operator's token refuses it first, with 401.
    `request_timeout` bounds each call but the onboarding (which waits up to 30 s by itself);
    cold function processes of the emulated topology need more than a warm `make run`.
    """
    api = f"{url}/api/v1/tenants"
    assert requests.post(f"{api}/dryrun", json=SEED_REQUEST, timeout=request_timeout).status_code == 401
    dry = operator.post(f"{api}/dryrun", json=SEED_REQUEST, timeout=request_timeout)
    assert dry.status_code == 200 and dry.json()["status"] == "SUCCESS", dry.text

    onboard = operator.post(f"{api}/onboard?wait=30", json=SEED_REQUEST, timeout=30 + request_timeout)
    assert onboard.status_code == 201, onboard.text
    created = onboard.json()
    assert created["status"] == "ACTIVE" and created["message"] == "Tenant onboarded successfully"
    assert onboard.headers["Location"] == f"{api}/customer_123"

    status = operator.get(onboard.headers["Location"], timeout=request_timeout).json()
    assert status["status"] == "ACTIVE"

    key = {"X-API-Key": created["api_key"]}
    overview = requests.get(f"{api}/customer_123/overview", headers=key, timeout=request_timeout).json()
    assert {key: overview[key] for key in overview if key != "schema_version"} == SEED_OVERVIEW
    assert requests.get(f"{api}/customer_123", headers=key, timeout=request_timeout).status_code == tenant_key_on_operator_route

    assert operator.post(f"{api}/onboard", json=SEED_REQUEST, timeout=request_timeout).status_code == 409
    api_key: str = created["api_key"]
    return api_key


def test_seed_session(server: RunningServer) -> None:
    api_key = run_seed_session(server.url, server.session)
    log = server.log_path.read_text()
    assert api_key not in log and server.operator_token not in log


def test_data_survives_a_restart(tmp_path: Path) -> None:
    first = RunningServer(tmp_path / "data")
    first.wait_ready()
    api = f"{first.url}/api/v1/tenants"
    first.session.post(f"{api}/dryrun", json=SEED_REQUEST, timeout=10)
    key = first.session.post(f"{api}/onboard?wait=30", json=SEED_REQUEST, timeout=40).json()["api_key"]
    first.stop()

    second = RunningServer(tmp_path / "data", port=first.port)
    second.wait_ready()
    try:
        response = requests.get(f"{api}/customer_123/overview", headers={"X-API-Key": key}, timeout=10)
        assert response.status_code == 200 and response.json()["tenant_status"] == "ACTIVE"
    finally:
        second.stop()
