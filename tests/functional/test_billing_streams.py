"""Shuffled, duplicated billing streams for 50 tenants end in the state their latest events imply."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from shared.services import Services
from tests.conftest import SEED_REQUEST
from tests.functional.billing_support import api_key_status, billing_message, lifecycle_events, post_billing, trail, view_row

TENANTS = 50
PLANS = ("STARTER", "PROFESSIONAL", "SCALE")
LIMITS = {"STARTER": 6, "PROFESSIONAL": 25, "SCALE": 100}
SUBSCRIPTION_STATUS = {"ACTIVE": "ACTIVE", "SUSPENDED": "SUSPENDED", "OFFBOARDED": "CANCELLED"}
STATUS_AFTER = {"tenant.suspended": "SUSPENDED", "tenant.resumed": "ACTIVE", "tenant.offboarded": "OFFBOARDED"}


@dataclass
class Stream:
    """One tenant's billing history, in the order it happened, and what it implies."""

    tenant_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def expected_status(self) -> str:
        kinds = [message["type"] for message in self.messages]
        if "subscription_cancelled" in kinds:
            return "OFFBOARDED"
        payments = [kind for kind in kinds if kind in {"payment_failed", "payment_recovered"}]
        return "SUSPENDED" if payments and payments[-1] == "payment_failed" else "ACTIVE"

    def expected_plan(self) -> str:
        plans = [message["new_plan"] for message in self.messages if message["type"] == "plan_changed"]
        return plans[-1] if plans else "PROFESSIONAL"


def _history(rng: random.Random, tenant_id: str) -> Stream:
    """3 to 8 events at increasing times; a cancellation, when there is one, is the last thing that happens."""
    stream = Stream(tenant_id)
    minute = 0
    for index in range(rng.randint(3, 8)):
        minute += rng.randint(1, 90)
        kind = rng.choice(["payment_failed", "payment_recovered", "plan_changed", "plan_changed"])
        plan = rng.choice(PLANS) if kind == "plan_changed" else None
        stream.messages.append(billing_message(f"{tenant_id}-e{index}", tenant_id, kind, minute, new_plan=plan))
    if rng.random() < 0.2:
        stream.messages.append(billing_message(f"{tenant_id}-cancel", tenant_id, "subscription_cancelled", minute + 1))
    return stream


def _onboard_many(client: FlaskClient, platform: Any, tenant_ids: list[str]) -> None:
    for tenant_id in tenant_ids:
        body = {**SEED_REQUEST, "tenant_id": tenant_id}
        assert client.post("/api/v1/tenants/dryrun", json=body).get_json()["ready_for_onboarding"]
        assert client.post("/api/v1/tenants/onboard", json=body).status_code == 202
    assert platform.bus.wait_idle(240), "onboarding did not finish"
    for tenant_id in tenant_ids:
        assert client.get(f"/api/v1/tenants/{tenant_id}").get_json()["status"] == "ACTIVE"


def test_shuffled_duplicated_streams_end_in_the_state_the_latest_events_imply(client: FlaskClient, platform: Any) -> None:
    rng = random.Random(20260301)
    tenant_ids = [f"stream_tenant_{index:02d}" for index in range(TENANTS)]
    _onboard_many(client, platform, tenant_ids)
    streams = [_history(rng, tenant_id) for tenant_id in tenant_ids]
    deliveries = [message for stream in streams for message in stream.messages]
    deliveries += [message for message in deliveries if rng.random() < 0.3]  # duplicates
    rng.shuffle(deliveries)

    for message in deliveries:
        post_billing(client, message)
    assert platform.bus.wait_idle(240), "billing events did not drain"

    services: Services = platform.services
    cancelled = sum(stream.expected_status() == "OFFBOARDED" for stream in streams)
    suspended = sum(stream.expected_status() == "SUSPENDED" for stream in streams)
    assert cancelled and suspended and TENANTS - cancelled - suspended, "the seed should exercise every final status"
    for stream in streams:
        tenant_id, status = stream.tenant_id, stream.expected_status()
        state = services.documents.get("tenants", tenant_id)
        assert state is not None and state["status"] == status, (tenant_id, stream.messages)
        row = view_row(services, tenant_id)
        assert (row["tenant_status"], row["subscription_status"]) == (status, SUBSCRIPTION_STATUS[status]), tenant_id
        assert api_key_status(services, tenant_id) == ["REVOKED" if status == "OFFBOARDED" else "ACTIVE"]
        assert services.documents.find("dead_letters", "tenant_id", tenant_id) == []
        records = trail(client, tenant_id)
        assert sorted(record["event_id"] for record in records) == sorted(message["event_id"] for message in stream.messages)
        if status != "OFFBOARDED":  # once cancelled, a plan change that arrives late is refused, whatever its date
            plan = stream.expected_plan()
            assert state["subscription_plan"] == plan, (tenant_id, stream.messages)
            assert (row["plan_name"], row["subscription_daily_limit"]) == (plan, LIMITS[plan]), tenant_id

    announced: dict[str, dict[str, Any]] = {}
    for event in lifecycle_events(platform):
        assert announced.setdefault(event["event_id"], event) == event, "a repeated lifecycle event id must repeat the same event"
        if event["type"] in STATUS_AFTER:
            assert event["status"] == STATUS_AFTER[event["type"]], event
    applied_changes = {
        record["event_id"]
        for stream in streams
        for record in trail(client, stream.tenant_id)
        if record["outcome"] == "applied" and record["lifecycle_event"]
    }
    billing_caused = {event["cause_event_id"] for event in announced.values() if event["type"] != "tenant.activated"}
    assert billing_caused == applied_changes
