"""The dataset step's validation row: streamed once into the table it just created, its declared schema kept, never twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from schemas.events import StepRequested
from shared import sql
from shared.handlers import provisioning
from shared.handlers.provisioning import provision_dataset
from shared.handlers.tenant_store import load_tenant
from shared.services import Services
from tests.conftest import SEED_REQUEST, onboard_seed

TENANT = SEED_REQUEST["tenant_id"]
ROW_ID = f"{TENANT}_onboarding_validation"


def _rows(services: Services) -> list[dict[str, Any]]:
    return services.warehouse.query(f"SELECT id, test_message, created_at FROM `{TENANT}.onboarding_validation_test`")


def _command(services: Services) -> StepRequested:
    return StepRequested(event_id=f"{TENANT}.dataset.1", tenant_id=TENANT, step="dataset", generation=1, occurred_at=services.now())


def test_the_validation_table_keeps_its_declared_schema_and_its_required_columns(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    onboard_seed(client)
    declared = sql.declared_columns(sql.render("tenant_tables", dataset=TENANT))["onboarding_validation_test"]
    assert services.warehouse.table_columns(TENANT, "onboarding_validation_test") == declared
    # REQUIRED (NOT NULL) is kept: a row without an id or a time is refused.
    for values in ("NULL, 'no id', CURRENT_TIMESTAMP()", "'x', 'no time', NULL"):
        with pytest.raises(Exception, match=r"(?i)null"):
            services.warehouse.execute(f"INSERT INTO `{TENANT}.onboarding_validation_test` VALUES ({values})")
    assert [row["id"] for row in _rows(services)] == [ROW_ID]


def test_a_redelivered_dataset_step_writes_nothing_more(client: FlaskClient, platform: Any) -> None:
    services: Services = platform.services
    onboard_seed(client)
    first = _rows(services)
    state = load_tenant(services, TENANT)
    assert state is not None
    for _ in range(2):  # the dataset exists now: each redelivery goes through the MERGE, which finds the row
        assert provision_dataset(state, _command(services), services) == {"dataset_created": True}
    assert _rows(services) == first


def test_a_duplicate_running_beside_the_first_leaves_one_row_the_streamed_one(client: FlaskClient, platform: Any) -> None:
    """The worst interleaving: the duplicate's MERGE lands before the first attempt's append; the last writer removes the later row."""
    services: Services = platform.services
    onboard_seed(client)
    state = load_tenant(services, TENANT)
    assert state is not None
    started = state.steps["dataset"].started_at
    assert started is not None
    services.warehouse.delete_dataset(TENANT)  # as it was before the first attempt
    services.warehouse.create_dataset(TENANT)  # created by the first attempt, which then stalls
    duplicate = provision_dataset(state, _command(services), services)  # sees the dataset, writes with the MERGE
    assert duplicate == {"dataset_created": True}  # the tenant's dataset was created by its own step either way
    assert len(_rows(services)) == 1

    provisioning._validation_table(state, started, True, services)  # the first attempt resumes: its append, its read back
    rows = _rows(services)
    assert len(rows) == 1
    assert rows[0]["created_at"].replace(tzinfo=None) == datetime.fromisoformat(started).replace(tzinfo=None)
