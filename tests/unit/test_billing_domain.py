"""Billing transitions as pure functions, the billing message contract and the lifecycle policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.events import BillingEvent
from shared.bootstrap import read_lifecycle_policy
from shared.domain import tenant as transitions
from shared.domain.tenant import BillingKind, TenantState, initial_steps

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PLANS = ("STARTER", "PROFESSIONAL", "SCALE")


def _live(status: str = "ACTIVE") -> TenantState:
    return TenantState(
        tenant_id="t1",
        company_name="c",
        admin_email="a@b.co",
        subscription_plan="PROFESSIONAL",
        status=status,  # type: ignore[arg-type]
        steps=initial_steps(),
        api_key_hash="h",
        request_fingerprint="f",
        created_at="2026-03-01T00:00:00.000Z",
        updated_at="2026-03-01T00:00:00.000Z",
    )


def _apply(state: TenantState, kind: BillingKind, minutes: int, new_plan: str | None = None) -> transitions.BillingDecision:
    return transitions.apply_billing_event(
        state,
        kind,
        occurred_at=NOW + timedelta(minutes=minutes),
        new_plan=new_plan,
        known_plans=PLANS,
        now=NOW,
        retention=timedelta(days=30),
    )


def test_a_document_written_before_billing_existed_still_loads() -> None:
    old = _live().model_dump(exclude={"status_event_at", "plan_event_at", "offboarded_at", "purge_after"})
    state = TenantState.model_validate(old)
    assert (state.status_event_at, state.plan_event_at, state.purge_after) == (None, None, None)


@pytest.mark.parametrize(
    ("status", "kind", "outcome", "after", "lifecycle"),
    [
        ("ACTIVE", "payment_failed", "applied", "SUSPENDED", "tenant.suspended"),
        ("SUSPENDED", "payment_recovered", "applied", "ACTIVE", "tenant.resumed"),
        ("ACTIVE", "payment_recovered", "applied", "ACTIVE", None),
        ("SUSPENDED", "payment_failed", "applied", "SUSPENDED", None),
        ("ACTIVE", "subscription_cancelled", "applied", "OFFBOARDED", "tenant.offboarded"),
        ("SUSPENDED", "subscription_cancelled", "applied", "OFFBOARDED", "tenant.offboarded"),
        ("OFFBOARDED", "payment_recovered", "refused", "OFFBOARDED", None),
        ("OFFBOARDED", "payment_failed", "refused", "OFFBOARDED", None),
        ("OFFBOARDED", "subscription_cancelled", "ignored", "OFFBOARDED", None),
    ],
)
def test_status_transitions(status: str, kind: BillingKind, outcome: str, after: str, lifecycle: str | None) -> None:
    decision = _apply(_live(status), kind, 1)
    assert (decision.outcome, decision.state.status, decision.lifecycle) == (outcome, after, lifecycle)


def test_cancellation_sets_the_retention_deadline_whatever_its_date() -> None:
    recovered = _apply(_live("SUSPENDED"), "payment_recovered", 60).state
    decision = _apply(recovered, "subscription_cancelled", 5)
    assert decision.state.status == "OFFBOARDED"
    assert decision.state.purge_after == "2026-03-31T12:00:00.000Z"
    assert not transitions.purge_due(decision.state, NOW + timedelta(days=29))
    assert transitions.purge_due(decision.state, NOW + timedelta(days=30))


def test_an_older_payment_event_is_ignored_but_does_not_block_plan_changes() -> None:
    recovered = _apply(_apply(_live(), "payment_failed", 10).state, "payment_recovered", 30).state
    late = _apply(recovered, "payment_failed", 20)
    assert (late.outcome, late.state.status) == ("ignored", "ACTIVE") and late.state is recovered
    plan = _apply(recovered, "plan_changed", 5, new_plan="SCALE")
    assert (plan.outcome, plan.state.subscription_plan, plan.lifecycle) == ("applied", "SCALE", "tenant.plan_changed")
    older_plan = _apply(plan.state, "plan_changed", 4, new_plan="STARTER")
    assert (older_plan.outcome, older_plan.state.subscription_plan) == ("ignored", "SCALE")


def test_an_equal_timestamp_is_not_newer() -> None:
    suspended = _apply(_live(), "payment_failed", 10).state
    assert _apply(suspended, "payment_recovered", 10).outcome == "ignored"


def test_unknown_plan_and_offboarded_plan_change_are_refused() -> None:
    unknown = _apply(_live(), "plan_changed", 1, new_plan="GOLD")
    assert unknown.outcome == "refused" and "GOLD" in unknown.detail
    offboarded = _apply(_live("OFFBOARDED"), "plan_changed", 1, new_plan="SCALE")
    assert (offboarded.outcome, offboarded.state.subscription_plan) == ("refused", "PROFESSIONAL")


@pytest.mark.parametrize("status", ["PROVISIONING", "FAILED"])
def test_tenants_not_live_take_no_billing_event(status: str) -> None:
    assert not transitions.accepts_billing(_live(status))
    with pytest.raises(ValueError, match=status):
        _apply(_live(status), "payment_failed", 1)


def test_subscription_status_follows_the_tenant_status() -> None:
    assert [transitions.subscription_status(s) for s in ("ACTIVE", "SUSPENDED", "OFFBOARDED")] == ["ACTIVE", "SUSPENDED", "CANCELLED"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"type": "plan_changed"}, "new_plan is required"),
        ({"new_plan": "SCALE"}, "new_plan must be absent"),
        ({"occurred_at": "2026-03-01T09:00:00"}, "timezone"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"event_id": "a/b"}, "event_id"),
        ({"type": "refund_issued"}, "type"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_billing_message_contract_refuses_malformed_messages(change: dict[str, object], problem: str) -> None:
    message = {"event_id": "e1", "tenant_id": "t1", "type": "payment_failed", "occurred_at": "2026-03-01T09:00:00Z", "source": "billing"}
    with pytest.raises(ValidationError, match=problem):
        BillingEvent.model_validate({**message, **change})


def test_lifecycle_policy_defaults_to_thirty_days() -> None:
    assert read_lifecycle_policy().retention == timedelta(days=30)
