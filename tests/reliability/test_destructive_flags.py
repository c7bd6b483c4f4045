"""force_recreate_dataset / force_recreate_tables touch an orphan dataset only, and only once."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from schemas.events import StepRequested
from shared.handlers.provisioning import provision_dataset
from shared.handlers.tenant_store import load_tenant
from shared.services import Services
from tests.conftest import SEED_REQUEST, onboard_seed

TENANT = SEED_REQUEST["tenant_id"]


def _make_orphan(services: Services) -> None:
    """A dataset named like the tenant, with a table of its own and an old validation row: no tenant."""
    warehouse = services.warehouse
    warehouse.create_dataset(TENANT)
    warehouse.execute(f"CREATE TABLE `{TENANT}.legacy` (note STRING)")
    columns = "id STRING NOT NULL, test_message STRING, created_at TIMESTAMP NOT NULL"
    warehouse.execute(f"CREATE TABLE `{TENANT}.onboarding_validation_test` ({columns})")
    warehouse.execute(f"INSERT INTO `{TENANT}.onboarding_validation_test` VALUES ('old', 'left over', CURRENT_TIMESTAMP())")


def _onboard_with(client: FlaskClient, **flags: bool) -> dict[str, Any]:
    assert client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    response = client.post("/api/v1/tenants/onboard?wait=20", json={**SEED_REQUEST, **flags})
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _tables(services: Services) -> set[str]:
    return {name for name in ("legacy", "onboarding_validation_test") if services.warehouse.table_columns(TENANT, name) is not None}


def _validation_ids(services: Services) -> set[str]:
    return {row["id"] for row in services.warehouse.query(f"SELECT id FROM `{TENANT}.onboarding_validation_test`")}


def test_the_dry_run_says_which_case_it_is(client: FlaskClient, platform: Any) -> None:
    def existence() -> str:
        checks = client.post("/api/v1/tenants/dryrun", json=SEED_REQUEST).get_json()["checks"]
        return str(next(check["detail"] for check in checks if check["name"] == "tenant_existence"))

    assert "no tenant or dataset" in existence()
    _make_orphan(platform.services)
    assert "orphan dataset" in existence() and "force_recreate_dataset drops and recreates it" in existence()
    platform.services.warehouse.delete_dataset(TENANT)
    onboard_seed(client)
    assert "already exists" in existence() and "never touch" in existence()


def test_without_flags_an_orphan_is_reused_as_it_is(client: FlaskClient, platform: Any) -> None:
    _make_orphan(platform.services)
    created = onboard_seed(client)
    assert created["dataset_created"] is False
    assert _tables(platform.services) == {"legacy", "onboarding_validation_test"}
    assert _validation_ids(platform.services) == {"old", f"{TENANT}_onboarding_validation"}


def test_force_recreate_dataset_replaces_an_orphan(client: FlaskClient, platform: Any) -> None:
    _make_orphan(platform.services)
    created = _onboard_with(client, force_recreate_dataset=True)
    assert created["dataset_created"] is True
    assert _tables(platform.services) == {"onboarding_validation_test"}
    assert _validation_ids(platform.services) == {f"{TENANT}_onboarding_validation"}
    state = load_tenant(platform.services, TENANT)
    assert state is not None and state.dataset_action == "recreate_orphan" and state.orphan_cleared


def test_force_recreate_tables_recreates_only_our_tables_of_an_orphan(client: FlaskClient, platform: Any) -> None:
    _make_orphan(platform.services)
    _onboard_with(client, force_recreate_tables=True)
    assert _tables(platform.services) == {"legacy", "onboarding_validation_test"}
    assert _validation_ids(platform.services) == {f"{TENANT}_onboarding_validation"}


def test_the_flags_never_touch_the_dataset_of_an_existing_tenant(client: FlaskClient, platform: Any) -> None:
    onboard_seed(client)
    before = _validation_ids(platform.services)
    again = client.post("/api/v1/tenants/onboard", json={**SEED_REQUEST, "force_recreate_dataset": True, "force_recreate_tables": True})
    assert again.status_code == 409
    assert _validation_ids(platform.services) == before
    assert platform.services.warehouse.table_columns(TENANT, "tenant_comprehensive_view") is not None


def test_a_late_duplicate_of_the_dataset_step_never_deletes_what_an_earlier_attempt_created(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    _make_orphan(services)
    _onboard_with(client, force_recreate_dataset=True)
    created_since = f"{TENANT}_onboarding_validation"
    assert created_since in _validation_ids(services)

    # A duplicate that read the state document before the first attempt cleared the orphan.
    stale = load_tenant(services, TENANT)
    assert stale is not None
    stale = stale.model_copy(update={"orphan_cleared": False, "orphan_clear_lease": None})
    command = StepRequested(event_id=f"{TENANT}.dataset.1", tenant_id=TENANT, step="dataset", generation=1, occurred_at=services.now())
    provision_dataset(stale, command, services)
    assert created_since in _validation_ids(services)
