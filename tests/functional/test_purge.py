"""Finding 7: a purge removes every trace of the tenant's personal data, down to the bytes of the data dir."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from shared.services import API_KEYS, DEAD_LETTERS, IDEMPOTENCY_KEYS, PROCESSED_EVENTS, TENANT_EVENTS, VALIDATIONS, Services, utcnow
from tests.conftest import onboard_seed
from tests.functional.billing_support import billing_message, post_billing

VICTIM = {
    "tenant_id": "purge_victim",
    "company_name": "Zyxwvut Purgeable Holdings",
    "admin_email": "zyxwvut.admin@purge-victim.example",
    "subscription_plan": "PROFESSIONAL",
}
BYSTANDER = {
    "tenant_id": "purge_bystander",
    "company_name": "Qwertyuiop Staying Limited",
    "admin_email": "qwertyuiop.admin@bystander.example",
    "subscription_plan": "STARTER",
}


def _files_holding(data_dir: Path, needle: str) -> list[str]:
    """Files of the data dir whose bytes contain `needle` (as UTF-8 or UTF-16, as any engine might store it)."""
    forms = [needle.encode(), needle.encode("utf-16-le")]
    return sorted(str(path.name) for path in data_dir.rglob("*") if path.is_file() and any(form in path.read_bytes() for form in forms))


def _settle(platform: Any) -> None:
    assert platform.bus.wait_idle(30), "the bus did not drain"


def _of_tenant(services: Services, collection: str, tenant_id: str) -> list[dict[str, Any]]:
    return [doc for _, doc in services.documents.scan(collection, "tenant_id") if doc.get("tenant_id") == tenant_id]


def test_finding7_purge_leaves_no_personal_data_in_any_store(platform: Any, client: FlaskClient) -> None:
    services: Services = platform.services
    tenant = VICTIM["tenant_id"]
    # Given a tenant with every kind of record: dry runs (one failed), an idempotent onboarding,
    # billing events (audit trail, processed markers), a dead letter; and a tenant that stays.
    client.post("/api/v1/tenants/dryrun", json={**VICTIM, "subscription_plan": "NOPE"})
    client.post("/api/v1/tenants/dryrun", json=VICTIM)
    onboarded = client.post("/api/v1/tenants/onboard?wait=20", json=VICTIM, headers={"Idempotency-Key": "victim-onboarding"})
    assert onboarded.status_code == 201, onboarded.get_json()
    onboard_seed(client, BYSTANDER)
    _settle(platform)
    post_billing(client, billing_message("victim-upgrade", tenant, "plan_changed", 1, new_plan="SCALE"))
    post_billing(client, billing_message("victim-cancel", tenant, "subscription_cancelled", 2))
    post_billing(client, billing_message("victim-cancel-again", tenant, "plan_changed", 3, new_plan="NOPE"))
    _settle(platform)
    data_dir = services.settings.data_dir
    for value in (VICTIM["company_name"], VICTIM["admin_email"]):
        assert _files_holding(data_dir, value), f"the test needs {value} stored before the purge"

    # When its retention is over and the purge runs.
    real_clock = services.clock
    services.clock = lambda: utcnow() + timedelta(days=31)
    try:
        purged = client.post("/api/v1/tenants/purge-expired").get_json()
    finally:
        services.clock = real_clock
    assert purged["purged"] == [tenant]
    _settle(platform)

    # Then no document, message or warehouse row holds its data, and no byte of the data dir either.
    for collection in (VALIDATIONS, API_KEYS, PROCESSED_EVENTS, IDEMPOTENCY_KEYS, DEAD_LETTERS):
        assert _of_tenant(services, collection, tenant) == [], collection
    trail = _of_tenant(services, TENANT_EVENTS, tenant)
    assert {record["type"] for record in trail} >= {"plan_changed", "subscription_cancelled", "tenant_purged"}
    for record in trail:
        assert set(record) <= {"event_id", "tenant_id", "type", "occurred_at", "recorded_at", "redacted"}, record
    assert client.get(f"/api/v1/tenants/{tenant}/events").status_code == 200
    for value in (VICTIM["company_name"], VICTIM["admin_email"]):
        assert _files_holding(data_dir, value) == [], value
    # The scan does see what a purge must not touch.
    assert _files_holding(data_dir, BYSTANDER["company_name"])
    assert client.get(f"/api/v1/tenants/{BYSTANDER['tenant_id']}").status_code == 200


def test_finding7_duckdb_keeps_deleted_rows_until_the_file_is_rewritten(tmp_path: Path) -> None:
    """Why the embedded warehouse rewrites its file: a DELETE and a CHECKPOINT leave the values in free blocks."""
    from shared.adapters.embedded.duckdb_warehouse import DuckdbWarehouse

    warehouse = DuckdbWarehouse(tmp_path / "warehouse.duckdb")
    try:
        warehouse.create_dataset("central")
        warehouse.execute("CREATE TABLE central.people (id STRING, name STRING)")
        warehouse.execute(
            "INSERT INTO central.people SELECT CAST(n AS STRING), CONCAT('person ', CAST(n AS STRING)) "
            "FROM UNNEST(GENERATE_ARRAY(1, 3000)) AS n"
        )
        warehouse.execute("INSERT INTO central.people (id, name) VALUES ('victim', @name)", {"name": VICTIM["company_name"]})
        warehouse.execute("DELETE FROM central.people WHERE id = 'victim'")
        warehouse.execute("CHECKPOINT")
        assert _files_holding(tmp_path, VICTIM["company_name"]) == ["warehouse.duckdb"]
        warehouse.erase_deleted()
        assert _files_holding(tmp_path, VICTIM["company_name"]) == []
        assert warehouse.query("SELECT COUNT(*) AS n FROM central.people") == [{"n": 3000}]
        warehouse.execute("INSERT INTO central.people (id, name) VALUES ('after', 'still writable')")
        assert warehouse.query("SELECT name FROM central.people WHERE id = 'after'") == [{"name": "still writable"}]
    finally:
        warehouse.close()
