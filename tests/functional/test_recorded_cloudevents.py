"""Recorded Pub/Sub pushes (raw from the emulator, and as Eventarc's binary and structured CloudEvents)
posted to the real functions-framework app of a step function: the step runs once, a redelivery is a no-op."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest

from schemas.http import OnboardRequest, TenantRequest
from shared import sql
from shared.entrypoints.runtime import install_services
from shared.handlers.dryrun import run_dry_run
from shared.handlers.onboard import onboard
from shared.services import PROCESSED_EVENTS, TENANTS, Services
from tests.conftest import SEED_REQUEST

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
RECORDINGS = ["pubsub_push_emulator", "cloudevent_binary", "cloudevent_structured"]


@pytest.fixture
def onboarded(services: Services) -> Iterator[Services]:
    """customer_123 onboarded; its step commands published but not delivered (no bus workers)."""
    install_services(services)
    assert run_dry_run(TenantRequest.model_validate(SEED_REQUEST), services).ready_for_onboarding
    onboard(OnboardRequest.model_validate(SEED_REQUEST), None, services)
    yield services
    install_services(None)


@pytest.mark.parametrize("recording", RECORDINGS)
def test_a_recorded_push_runs_the_quota_step_once(recording: str, onboarded: Services) -> None:
    recorded = json.loads((DATA / f"{recording}.json").read_text())
    client = functions_framework.create_app("step_quota", str(ROOT / "main.py")).test_client()
    for _ in range(2):  # Pub/Sub delivers at least once: the second push must change nothing
        response = client.post(recorded.get("path", "/"), data=json.dumps(recorded["body"]), headers=recorded["headers"])
        assert response.status_code == 200, response.get_data(as_text=True)

    state = onboarded.documents.get(TENANTS, "customer_123")
    assert state is not None and state["steps"]["quota"]["status"] == "DONE"
    assert onboarded.documents.get(PROCESSED_EVENTS, "customer_123.quota.1") is not None
    # The quota is recorded in Firestore (its system of record), once; the copy follows activation.
    assert state["quota"] == {
        "usage_date": onboarded.clock().date().isoformat(),
        "pipelines_run": 0,
        "pipelines_succeeded": 0,
        "pipelines_failed": 0,
        "platform_runs": 0,
        "usage_month": onboarded.clock().date().isoformat()[:7],
        "pipelines_run_month": 0,
        "platform_runs_month": 0,
        "max_concurrent_reached": 0,
    }
    assert state["steps"]["quota"]["attempts"] == 1
    [counts] = onboarded.warehouse.query(sql.render("count_tenant_rows", central=onboarded.central), {"tenant_id": "customer_123"})
    assert counts["quotas"] == 0


def test_the_recordings_carry_the_topic_and_our_attributes() -> None:
    binary = json.loads((DATA / "cloudevent_binary.json").read_text())
    assert binary["headers"]["ce-source"] == "//pubsub.googleapis.com/projects/demo-project/topics/onboarding-quota"
    attributes = binary["body"]["message"]["attributes"]
    assert attributes["tenant_id"] == "customer_123" and attributes["event_id"] == "customer_123.quota.1"
    raw = json.loads((DATA / "pubsub_push_emulator.json").read_text())
    assert "/projects/demo-project/topics/onboarding-quota" in raw["path"]
