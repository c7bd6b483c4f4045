"""Finding 9: every list route pages with `limit` and `page_token` -> `next_page_token`, never a silent cap."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from schemas.http import TenantEventRecord
from shared.handlers.dead_letter_store import record_dead_letter
from shared.services import TENANT_EVENTS, Services

TENANT = "paged_tenant"


def _walk(client: FlaskClient, url: str, key: str, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    for _ in range(50):
        query = f"limit={limit}" + (f"&page_token={token}" if token else "")
        response = client.get(f"{url}{'&' if '?' in url else '?'}{query}")
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["count"] == len(body[key]) <= limit
        pages.append(body[key])
        token = body.get("next_page_token")
        if token is None:
            return pages
    raise AssertionError("pagination never ended")


def _seed_dead_letters(services: Services, count: int) -> None:
    for n in range(count):
        record_dead_letter(
            services,
            letter_id=f"letter-{n:03d}",
            source="onboarding-quota-push",
            reason="test",
            attempts=3,
            data=b"{}",
            tenant_id=TENANT if n % 2 == 0 else "someone_else",
            step=None,
            event_id=None,
        )


def _seed_audit(services: Services, count: int) -> None:
    for n in range(count):
        record = TenantEventRecord(
            event_id=f"evt-{n:03d}",
            tenant_id=TENANT,
            type="payment_failed",
            occurred_at=f"2026-01-01T00:{n % 7:02d}:00Z",
            source="billing-test",
            outcome="applied",
            detail="",
            status_before="ACTIVE",
            status_after="ACTIVE",
            plan_before="STARTER",
            plan_after="STARTER",
            recorded_at="2026-01-01T00:00:00Z",
        )
        services.documents.set(TENANT_EVENTS, record.event_id, record.model_dump())


def test_finding9_dead_letters_page_through_every_entry(platform: Any, client: FlaskClient) -> None:
    _seed_dead_letters(platform.services, 11)
    pages = _walk(client, "/api/v1/dead-letters", "dead_letters", limit=4)
    ids = [entry["id"] for page in pages for entry in page]
    assert [len(page) for page in pages] == [4, 4, 3]
    assert sorted(ids) == [f"letter-{n:03d}" for n in range(11)]
    stamps = [entry["dead_lettered_at"] for page in pages for entry in page]
    assert stamps == sorted(stamps, reverse=True)
    mine = _walk(client, f"/api/v1/dead-letters?tenant_id={TENANT}", "dead_letters", limit=2)
    assert sorted(entry["id"] for page in mine for entry in page) == [f"letter-{n:03d}" for n in range(0, 11, 2)]


def test_finding9_tenant_events_page_in_order(platform: Any, client: FlaskClient) -> None:
    _seed_audit(platform.services, 9)
    pages = _walk(client, f"/api/v1/tenants/{TENANT}/events", "events", limit=4)
    events = [event for page in pages for event in page]
    assert len(events) == 9 and len({event["event_id"] for event in events}) == 9
    assert [event["occurred_at"] for event in events] == sorted(event["occurred_at"] for event in events)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=two", "limit"),
        ("limit=%C2%B2", "limit"),
        ("page_token=not-a-token", "page_token"),
        ("page_token=" + "A" * 3000, "page_token"),
        ("page_token=eyJsIjoiMCIsInYiOiJ4IiwiaSI6IngifQ", "page_token"),
    ],
)
def test_finding9_bad_limit_or_token_is_a_json_422(client: FlaskClient, query: str, field: str) -> None:
    for url in ("/api/v1/dead-letters", f"/api/v1/tenants/{TENANT}/events"):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 422, (url, response.get_data())
        assert response.get_json()["error"]["field"] == field


def test_finding9_a_token_of_one_listing_is_refused_by_another(platform: Any, client: FlaskClient) -> None:
    _seed_dead_letters(platform.services, 3)
    token = client.get("/api/v1/dead-letters?limit=1").get_json()["next_page_token"]
    assert token
    response = client.get(f"/api/v1/dead-letters?status=OPEN&page_token={token}")
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "page_token"
    assert client.get(f"/api/v1/tenants/{TENANT}/events?page_token={token}").status_code == 422
