"""What only the Google adapters do: vendor errors become ours, rate limits back off, parameters are typed."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from google.api_core import exceptions as google_errors

from shared.adapters.gcp.bigquery_warehouse import BigQueryWarehouse, query_parameter
from shared.cloud_profile import SERIALIZATION_ERROR, TOO_MANY_DML
from shared.ports import BackendError, NotFound, RateLimited


class _Job:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def result(self, timeout: float | None = None) -> list[Any]:
        class _Row(dict[str, Any]):
            pass

        return [_Row(row) for row in self._rows]


class _RateLimitedClient:
    """Refuses `refusals` times with rateLimitExceeded, then answers."""

    project = "p"

    def __init__(self, refusals: int, error: Exception) -> None:
        self.refusals = refusals
        self.error = error
        self.calls = 0

    def query(self, sql: str, **kwargs: Any) -> _Job:
        self.calls += 1
        if self.calls <= self.refusals:
            raise self.error
        return _Job([{"ok": 1}])


def _rate_limited() -> google_errors.Forbidden:
    return google_errors.Forbidden("Exceeded rate limits", errors=[{"reason": "rateLimitExceeded", "message": "too many"}])


def test_rate_limited_queries_back_off_then_succeed() -> None:
    client = _RateLimitedClient(2, _rate_limited())
    sleeps: list[float] = []
    warehouse = BigQueryWarehouse(client, max_attempts=5, base_backoff_seconds=0.1, sleep=sleeps.append)  # type: ignore[arg-type]
    assert warehouse.query("SELECT 1 AS ok") == [{"ok": 1}]
    assert client.calls == 3
    assert len(sleeps) == 2 and sleeps[0] <= 0.1 and sleeps[1] <= 0.2 and sleeps[1] > 0


def test_rate_limit_retries_are_bounded_and_end_in_our_error() -> None:
    client = _RateLimitedClient(10, _rate_limited())
    warehouse = BigQueryWarehouse(client, max_attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(BackendError) as raised:
        warehouse.query("SELECT 1")
    assert client.calls == 3
    assert not isinstance(raised.value, NotFound)
    assert raised.value.retryable


@pytest.mark.parametrize("text", [TOO_MANY_DML.format(table="p:d.t"), SERIALIZATION_ERROR.format(table="p:d.t")])
def test_dml_refused_for_other_dml_on_its_table_is_retried_like_a_rate_limit(text: str) -> None:
    # The same texts the Google Cloud profile raises (shared/cloud_profile.py): one retry path for both.
    client = _RateLimitedClient(2, google_errors.BadRequest(text))
    warehouse = BigQueryWarehouse(client, max_attempts=5, sleep=lambda _: None)  # type: ignore[arg-type]
    assert warehouse.query("MERGE `d.t` AS t USING (SELECT 1 AS x) AS s ON FALSE WHEN NOT MATCHED THEN INSERT ROW") == [{"ok": 1}]
    assert client.calls == 3

    stuck = BigQueryWarehouse(_RateLimitedClient(10, google_errors.BadRequest(text)), max_attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(RateLimited, match=re.escape(text)):
        stuck.query("MERGE ...")


def test_other_forbidden_errors_are_not_retried() -> None:
    client = _RateLimitedClient(10, google_errors.Forbidden("Access Denied", errors=[{"reason": "accessDenied"}]))
    warehouse = BigQueryWarehouse(client, max_attempts=3, sleep=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(BackendError) as raised:
        warehouse.query("SELECT 1")
    assert client.calls == 1
    assert raised.value.retryable is False


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("x", "STRING"),
        (True, "BOOL"),
        (3, "INT64"),
        (1.5, "FLOAT64"),
        (Decimal("1.5"), "NUMERIC"),
        (datetime(2026, 1, 1, tzinfo=UTC), "TIMESTAMP"),
        (date(2026, 1, 1), "DATE"),
        (None, "STRING"),
    ],
)
def test_parameters_are_typed(value: Any, kind: str) -> None:
    assert query_parameter("p", value).type_ == kind


@pytest.mark.emulator
def test_unknown_kms_key_is_not_found(gcp_endpoints: dict[str, str]) -> None:
    from shared.adapters.gcp.cloud_kms_key_manager import CloudKmsKeyManager
    from shared.adapters.gcp.wiring import kms_client
    from shared.bootstrap import load_settings

    keys = CloudKmsKeyManager(kms_client(load_settings()), "projects/demo-project/locations/global/keyRings/r/cryptoKeys/nope")
    with pytest.raises(NotFound):
        keys.encrypt(b"x", b"t")


@pytest.mark.emulator
def test_publishing_to_a_missing_topic_is_not_found(gcp_endpoints: dict[str, str]) -> None:
    from google.cloud import pubsub

    from shared.adapters.gcp.pubsub_event_bus import PubSubEventBus

    bus = PubSubEventBus(pubsub.PublisherClient(), os.environ["GOOGLE_CLOUD_PROJECT"], timeout_seconds=20)
    try:
        with pytest.raises(NotFound):
            bus.publish("no-such-topic", b"x", {"tenant_id": "t"})
    finally:
        bus.close()


@pytest.mark.emulator
def test_querying_a_missing_table_is_not_found(gcp_endpoints: dict[str, str]) -> None:
    from shared.adapters.gcp.wiring import bigquery_client
    from shared.bootstrap import load_settings

    warehouse = BigQueryWarehouse(bigquery_client(load_settings()))
    try:
        with pytest.raises(NotFound):
            warehouse.query("SELECT * FROM `no_such_dataset.no_such_table` WHERE x = @x", {"x": 1})
    finally:
        warehouse.close()


@pytest.mark.emulator
def test_dry_run_checks_ask_the_emulated_services(gcp_endpoints: dict[str, str], unique: str) -> None:
    """gcp_credentials, bigquery_connectivity and central_tables on the GCP backend read the real services."""
    from schemas.http import TenantRequest
    from shared.bootstrap import build_gcp_services, load_settings
    from shared.handlers.checks import run_check
    from shared.handlers.warehouse_setup import ensure_central_tables

    settings = load_settings({**os.environ, "ONBOARDING_BACKEND": "gcp", "ONBOARDING_CENTRAL_DATASET": unique})
    services = build_gcp_services(settings)
    request = TenantRequest(tenant_id="probe_tenant", company_name="P", admin_email="p@example.com", subscription_plan="STARTER")
    try:
        credentials = run_check("gcp_credentials", True, request, services)
        assert credentials.passed and "emulator mode" in credentials.detail
        assert run_check("bigquery_connectivity", True, request, services).passed
        before = run_check("central_tables", True, request, services)
        assert not before.passed and "tenant_profiles is missing" in before.detail
        ensure_central_tables(services.warehouse, unique)
        after = run_check("central_tables", True, request, services)
        assert after.passed, after.detail
    finally:
        services.close()


def test_credentials_check_reports_missing_application_default_credentials(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.adapters.gcp.wiring import credentials_check
    from shared.bootstrap import load_settings

    for name in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    passed, detail = credentials_check(load_settings({"ONBOARDING_BACKEND": "gcp", "GOOGLE_CLOUD_PROJECT": "p"}))
    assert passed is False
    assert "application default credentials unavailable" in detail


def test_credentials_check_in_emulator_mode_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.adapters.gcp.wiring import credentials_check
    from shared.bootstrap import load_settings

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:2")
    settings = load_settings(
        {"GOOGLE_CLOUD_PROJECT": "p", "BIGQUERY_API_ENDPOINT": "http://127.0.0.1:3", "KMS_API_ENDPOINT": "http://127.0.0.1:4"}
    )
    passed, detail = credentials_check(settings)
    assert passed and detail.startswith("emulator mode") and "127.0.0.1:3" in detail


@pytest.mark.parametrize(
    ("env", "message"),
    [({}, "GOOGLE_CLOUD_PROJECT"), ({"GOOGLE_CLOUD_PROJECT": "p"}, "ONBOARDING_KMS_KEY_NAME")],
)
def test_the_gcp_backend_refuses_to_start_without_project_or_key(env: dict[str, str], message: str) -> None:
    from shared.bootstrap import build_gcp_services, load_settings

    with pytest.raises(RuntimeError, match=message):
        build_gcp_services(load_settings({"ONBOARDING_BACKEND": "gcp", **env}))
