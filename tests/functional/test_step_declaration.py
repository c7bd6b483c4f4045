"""A step is declared once: a fifth step needs its declaration and its action, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.local import LocalPlatform
from functions.topology import event_triggers, step_table
from schemas.events import StepRequested
from scripts.deploy_config import step_lines
from shared.bootstrap import build_embedded_services
from shared.config import Settings
from shared.domain.steps import StepDeclaration, declared, step_names
from shared.domain.tenant import TenantState, initial_steps
from shared.handlers import provisioning
from shared.handlers.provisioning import step_action
from shared.services import Services
from tests.conftest import SEED_REQUEST, onboard_seed, operator_client

AUDIT = StepDeclaration(
    name="audit",
    topic="onboarding-audit",
    prerequisites=("dataset",),
    summary="records that the tenant's dataset was audited",
    grants=("bigquery.metadataViewer",),
)


def test_a_fifth_step_runs_through_the_real_bus_and_state_machine(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    audited: list[tuple[str, str]] = []

    def audit(state: TenantState, command: StepRequested, services: Services) -> dict[str, Any]:
        audited.append((state.tenant_id, state.step("dataset").status))
        return {}

    monkeypatch.setattr(provisioning, "STEP_ACTIONS", dict(provisioning.STEP_ACTIONS))  # the registration ends with the test
    with declared(AUDIT):
        step_action("audit", effects=audit)  # the step's action: the only other thing a new step needs
        platform = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
        platform.start()
        try:
            created = onboard_seed(operator_client(platform.app))
            assert platform.bus.wait_idle(30)
            status = operator_client(platform.app).get(f"/api/v1/tenants/{created['tenant_id']}").get_json()
            audit_messages = platform.bus.messages("onboarding-audit")
        finally:
            platform.stop()

    # The dataset step released it (its only prerequisite), once; it ran once, after the dataset was DONE.
    assert audited == [(SEED_REQUEST["tenant_id"], "DONE")]
    assert [json.loads(data)["step"] for data, _ in audit_messages] == ["audit"]
    steps = {step["name"]: (step["status"], step["attempts"]) for step in status["steps"]}
    assert steps == {name: ("DONE", 1) for name in ("subscription", "quota", "dataset", "view", "audit")}
    assert status["status"] == "ACTIVE"


def test_the_declaration_feeds_topology_deploy_plan_and_schema(settings: Settings) -> None:
    with declared(AUDIT):
        assert step_names()[-1] == "audit"
        assert [trigger.function for trigger in event_triggers()][-3:] == ["step_audit", "billing_event", "pipeline_run_result"]
        assert step_lines(settings, purge_role="R")[-1] == "audit onboarding-audit - - bigquery.metadataViewer"
        assert "dataset onboarding-dataset root onboarding-view,onboarding-audit" in step_lines(settings, purge_role="R")[2]
        assert StepRequested.model_json_schema()["properties"]["step"]["enum"][-1] == "audit"
        assert initial_steps()["audit"].status == "WAITING"
    with pytest.raises(ValueError, match="no step named 'audit'"):
        StepRequested(event_id="e", tenant_id="t", step="audit", generation=1, occurred_at="now")


def test_a_step_must_come_after_its_prerequisites() -> None:
    with pytest.raises(ValueError, match="must be declared before it"), declared(StepDeclaration("early", "t", ("later",), "x")):
        pass


def test_the_architecture_doc_lists_the_declared_steps() -> None:
    architecture = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    assert step_table() in architecture, "docs/architecture.md's step table is stale: paste functions.topology.step_table()"
