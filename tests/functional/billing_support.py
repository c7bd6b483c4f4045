"""Helpers for the billing tests: post billing messages, read the view, the trail and the lifecycle topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from shared import sql
from shared.services import Services

EPOCH = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    """A billing timestamp `minutes` after a fixed moment."""
    return (EPOCH + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def billing_message(event_id: str, tenant_id: str, kind: str, minutes: int, new_plan: str | None = None) -> dict[str, Any]:
    """One billing message as the billing system sends it."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "tenant_id": tenant_id,
        "type": kind,
        "occurred_at": at(minutes),
        "source": "billing-test",
    }
    if new_plan is not None:
        body["new_plan"] = new_plan
    return body


def post_billing(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST /api/v1/billing/events and expect 202."""
    response = client.post("/api/v1/billing/events", json=body)
    assert response.status_code == 202, response.get_json()
    accepted: dict[str, Any] = response.get_json()
    return accepted


def view_row(services: Services, tenant_id: str) -> dict[str, Any]:
    """The tenant's row of its comprehensive view, read straight from the warehouse."""
    rows = services.warehouse.query(sql.render("read_comprehensive_view", dataset=tenant_id))
    assert len(rows) == 1, rows
    return rows[0]


def trail(client: FlaskClient, tenant_id: str) -> list[dict[str, Any]]:
    """GET /api/v1/tenants/{tenant_id}/events."""
    response = client.get(f"/api/v1/tenants/{tenant_id}/events")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["count"] == len(body["events"])
    events: list[dict[str, Any]] = body["events"]
    return events


def lifecycle_events(platform: Any, tenant_id: str | None = None) -> list[dict[str, Any]]:
    """Every message published on tenant-lifecycle (optionally for one tenant), oldest first."""
    published = platform.bus.messages(platform.services.settings.topics.lifecycle)
    events = [json.loads(data) for data, _ in published]
    return [event for event in events if tenant_id is None or event["tenant_id"] == tenant_id]


def api_key_status(services: Services, tenant_id: str) -> list[str]:
    """The status of every API key of the tenant."""
    return [str(doc["status"]) for doc in services.documents.find("api_keys", "tenant_id", tenant_id)]
