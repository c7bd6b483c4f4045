"""The billing-events topic schema: generated from BillingEvent, takes what we publish, refuses malformed messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from schemas.events import BillingEvent
from schemas.export import PUBSUB_DIR
from schemas.pubsub_schema import SchemaRefused, check_json, rendered

SAMPLES: list[dict[str, Any]] = [
    {
        "event_id": "inv-1",
        "tenant_id": "customer_123",
        "type": "plan_changed",
        "new_plan": "STARTER",
        "occurred_at": "2026-03-01T09:00:00Z",
        "source": "billing",
    },
    {
        "event_id": "pay-2",
        "tenant_id": "customer_123",
        "type": "payment_failed",
        "occurred_at": "2026-03-01T10:00:00+01:00",
        "source": "billing",
    },
    {
        "event_id": "pay-3",
        "tenant_id": "customer_123",
        "type": "payment_recovered",
        "occurred_at": "2026-03-01T11:00:00Z",
        "source": "billing",
    },
    {
        "event_id": "sub-4",
        "tenant_id": "customer_123",
        "type": "subscription_cancelled",
        "occurred_at": "2026-03-01T12:00:00Z",
        "source": "billing",
    },
]


def test_the_committed_proto_files_are_the_generated_ones() -> None:
    generated = rendered()
    committed = {path.name: path.read_text() for path in PUBSUB_DIR.glob("*.proto")}
    assert committed == generated, "run `make schemas`"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: str(sample["type"]))
def test_every_billing_message_as_serialized_and_as_a_billing_system_writes_it_conforms(sample: dict[str, Any]) -> None:
    check_json(BillingEvent, json.dumps(sample).encode())  # as documented in docs/billing.md
    check_json(BillingEvent, BillingEvent.model_validate(sample).model_dump_json().encode())  # with schema_version, null new_plan


def test_what_the_billing_route_publishes_conforms(client: FlaskClient, platform: Any) -> None:
    for sample in SAMPLES:
        assert client.post("/api/v1/billing/events", json=sample).status_code == 202
    published = platform.bus.messages(platform.services.settings.topics.billing)
    assert len(published) == len(SAMPLES)
    for data, _ in published:
        check_json(BillingEvent, data)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"event_id": None}, "missing required fields: event_id"),
        ({"type": "refund_issued"}, "Invalid enum value refund_issued"),
        ({"tenant_id": 123}, "tenant_id"),
        ({"discount": "10%"}, 'no field named "discount"'),
    ],
)
def test_a_malformed_message_is_refused(change: dict[str, Any], why: str) -> None:
    message = {**SAMPLES[1], **change}
    message = {key: value for key, value in message.items() if value is not None}
    with pytest.raises(SchemaRefused, match=why):
        check_json(BillingEvent, json.dumps(message).encode())


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(SchemaRefused):
        check_json(BillingEvent, b"payment_failed customer_123")
