"""The billing session of docs/billing.md against the real server started with `make run`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.conftest import SEED_REQUEST
from tests.e2e.server import RunningServer
from tests.functional.billing_support import billing_message

pytestmark = pytest.mark.e2e
TENANT = SEED_REQUEST["tenant_id"]


def _eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30) -> Any:
    """Poll `read` until `done` holds (events apply asynchronously); the last value either way."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def test_plan_change_suspension_and_recovery_over_http(server: RunningServer) -> None:
    api = f"{server.url}/api/v1"
    operator = server.session
    assert operator.post(f"{api}/tenants/dryrun", json=SEED_REQUEST, timeout=10).json()["ready_for_onboarding"]
    created = operator.post(f"{api}/tenants/onboard?wait=30", json=SEED_REQUEST, timeout=40).json()
    key = {"X-API-Key": created["api_key"]}

    def overview() -> requests.Response:
        return requests.get(f"{api}/tenants/{TENANT}/overview", headers=key, timeout=10)

    def trail() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = operator.get(f"{api}/tenants/{TENANT}/events", timeout=10).json()["events"]
        return events

    accepted = operator.post(
        f"{api}/billing/events", json=billing_message("inv-1", TENANT, "plan_changed", 1, new_plan="STARTER"), timeout=10
    )
    assert accepted.status_code == 202 and accepted.json()["status"] == "ACCEPTED"
    assert len(_eventually(trail, lambda events: len(events) == 1)) == 1
    # The trail is written in the transaction; the warehouse follows right after the commit.
    row = _eventually(lambda: overview().json(), lambda body: body.get("plan_name") == "STARTER")
    assert (row["plan_name"], row["subscription_daily_limit"], row["daily_usage_percent"]) == ("STARTER", 6, 16.7)

    operator.post(f"{api}/billing/events", json=billing_message("pay-2", TENANT, "payment_failed", 2), timeout=10)
    suspended = _eventually(overview, lambda response: response.status_code == 403)
    assert suspended.status_code == 403 and suspended.json()["error"]["code"] == "TENANT_SUSPENDED"

    operator.post(f"{api}/billing/events", json=billing_message("pay-3", TENANT, "payment_recovered", 3), timeout=10)
    resumed = _eventually(overview, lambda response: response.status_code == 200 and response.json()["tenant_status"] == "ACTIVE")
    assert resumed.status_code == 200 and resumed.json()["tenant_status"] == "ACTIVE"
    assert [(event["event_id"], event["outcome"]) for event in _eventually(trail, lambda events: len(events) == 3)] == [
        ("inv-1", "applied"),
        ("pay-2", "applied"),
        ("pay-3", "applied"),
    ]
