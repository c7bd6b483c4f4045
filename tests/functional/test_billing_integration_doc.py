"""docs/billing-integration.md as written: its Stripe translation and its `gcloud pubsub topics publish` messages."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from schemas.events import BillingEvent
from schemas.pubsub_schema import check_json
from tests.conftest import SEED_REQUEST, onboard_seed
from tests.functional.billing_support import post_billing, trail

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "billing-integration.md"
TENANT = SEED_REQUEST["tenant_id"]
T0 = 1_795_000_000  # 2026-11-18T11:06:40Z
PRICE_CHANGED = {"items": {"object": "list", "data": []}}  # previous_attributes of a price change


def blocks(language: str) -> list[str]:
    """The guide's fenced code blocks in `language`."""
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def published_messages() -> list[dict[str, Any]]:
    """The `--message` of every `gcloud pubsub topics publish billing-events` in the guide, parsed as the shell would."""
    messages = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:5] == ["gcloud", "pubsub", "topics", "publish", "billing-events"]:
                [message] = [word.removeprefix("--message=") for word in words if word.startswith("--message=")]
                messages.append(json.loads(message))
    return messages


def translation() -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """The guide's `billing_event` function, run from its Python block."""
    [code] = blocks("python")
    namespace: dict[str, Any] = {}
    exec(compile(code, str(GUIDE), "exec"), namespace)  # the guide's own code, under test
    function: Callable[[dict[str, Any]], dict[str, Any] | None] = namespace["billing_event"]
    return function


def stripe(event_id: str, kind: str, created: int, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """An Event object as Stripe documents it (https://docs.stripe.com/api/events/object)."""
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": event_id, "object": "event", "created": created, "type": kind, "data": data, "livemode": False}


def invoice(tenant_id: str | None) -> dict[str, Any]:
    """An invoice created by a subscription whose metadata names the tenant (https://docs.stripe.com/api/invoices/object)."""
    metadata = {"tenant_id": tenant_id} if tenant_id else {}
    parent = {"type": "subscription_details", "subscription_details": {"subscription": "sub_1", "metadata": metadata}}
    return {"id": "in_1", "object": "invoice", "customer": "cus_1", "status": "open", "parent": parent}


def subscription(tenant_id: str, lookup_key: str, status: str = "active") -> dict[str, Any]:
    """A subscription with one price (https://docs.stripe.com/api/subscriptions/object)."""
    item = {"id": "si_1", "object": "subscription_item", "price": {"id": "price_1", "object": "price", "lookup_key": lookup_key}}
    items = {"object": "list", "data": [item]}
    metadata = {"tenant_id": tenant_id}
    return {"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status, "metadata": metadata, "items": items}


def conforms(message: dict[str, Any]) -> None:
    """The message passes our model and the Pub/Sub schema of billing-events."""
    BillingEvent.model_validate(message)
    check_json(BillingEvent, json.dumps(message).encode())


def test_the_published_examples_conform_to_the_topic_schema_and_the_model() -> None:
    messages = published_messages()
    assert {message["type"] for message in messages} >= {"payment_failed", "plan_changed"}
    for message in messages:
        conforms(message)


def test_the_translation_maps_each_of_the_four_stripe_events() -> None:
    translate = translation()
    failed = translate(stripe("evt_1", "invoice.payment_failed", T0, invoice(TENANT)))
    occurred_at = "2026-11-18T11:06:40Z"
    assert failed == {"event_id": "evt_1", "tenant_id": TENANT, "type": "payment_failed", "occurred_at": occurred_at, "source": "stripe"}
    paid = translate(stripe("evt_2", "invoice.paid", T0 + 60, invoice(TENANT)))
    assert paid is not None and paid["type"] == "payment_recovered"
    upgraded = translate(stripe("evt_3", "customer.subscription.updated", T0 + 120, subscription(TENANT, "scale"), PRICE_CHANGED))
    assert upgraded is not None and (upgraded["type"], upgraded["new_plan"]) == ("plan_changed", "SCALE")
    ended = translate(stripe("evt_4", "customer.subscription.deleted", T0 + 180, subscription(TENANT, "scale", "canceled")))
    assert ended is not None and ended["type"] == "subscription_cancelled"
    for message in (failed, paid, upgraded, ended):
        assert message is not None
        conforms(message)


def test_the_translation_sends_nothing_for_what_changes_no_tenant() -> None:
    translate = translation()
    status_only = stripe("evt_5", "customer.subscription.updated", 1, subscription(TENANT, "scale", "past_due"), {"status": "active"})
    assert translate(status_only) is None
    assert translate(stripe("evt_6", "invoice.paid", 1, invoice(None))) is None
    assert translate(stripe("evt_7", "customer.created", 1, {"id": "cus_1", "object": "customer", "metadata": {}})) is None


@pytest.mark.parametrize("lookup_key", ["starter", "no_such_price"])
def test_a_translated_plan_change_is_applied_or_refused_visibly(client: FlaskClient, platform: Any, lookup_key: str) -> None:
    onboard_seed(client)
    translate = translation()
    change = translate(stripe("evt_8", "customer.subscription.updated", T0, subscription(TENANT, lookup_key), PRICE_CHANGED))
    assert change is not None
    post_billing(client, change)
    assert platform.bus.wait_idle(30), "the bus did not drain"
    [recorded] = trail(client, TENANT)
    assert recorded["event_id"] == "evt_8"
    expected = ("applied", "STARTER") if lookup_key == "starter" else ("refused", "PROFESSIONAL")
    assert (recorded["outcome"], recorded["plan_after"]) == expected


def test_the_published_examples_apply_to_an_active_tenant(client: FlaskClient, platform: Any) -> None:
    onboard_seed(client)
    for message in published_messages():
        post_billing(client, message)
        assert platform.bus.wait_idle(30), "the bus did not drain"
    outcomes = {event["type"]: (event["outcome"], event["status_after"], event["plan_after"]) for event in trail(client, TENANT)}
    assert outcomes == {"payment_failed": ("applied", "SUSPENDED", "PROFESSIONAL"), "plan_changed": ("applied", "SUSPENDED", "SCALE")}
