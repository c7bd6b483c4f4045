"""Traces in logs and message attributes, error answers with httpRequest, and /metrics after real onboardings."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from functions.local import LocalPlatform
from scripts.observability_config import log_metrics
from shared.bootstrap import build_embedded_services
from shared.handlers.provisioning import published_at_onboarding
from shared.handlers.reconcile import reconcile
from shared.logging_setup import configure_logging
from shared.tracing import TRACE_ATTRIBUTE, TRACE_FIELD, parse_cloud_trace_context, parse_traceparent, trace_project
from tests.conftest import SEED_REQUEST, fast_settings, operator_client
from tests.functional.billing_support import billing_message

API = "/api/v1/tenants"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
RETRY_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[tuple[LocalPlatform, io.StringIO]]:
    """The local platform with fault injection available (no fault on), its JSON log lines captured."""
    stream = io.StringIO()
    handler = configure_logging(stream=stream)
    settings = fast_settings(tmp_path / "data", ONBOARDING_FAULTS="delay_ms=0", ONBOARDING_CALL_ATTEMPTS="2")
    platform = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
    platform.start()
    try:
        yield platform, stream
    finally:
        platform.stop()
        logging.getLogger().removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def _settled(client: Any, tenant_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get(f"{API}/{tenant_id}").get_json()
        if status["status"] != "PROVISIONING" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_trace_headers_are_read_as_w3c_and_google_define_them() -> None:
    parsed = parse_traceparent(TRACEPARENT)
    assert parsed is not None and (parsed.trace_id, parsed.span_id, parsed.sampled) == (TRACE_ID, "00f067aa0ba902b7", True)
    assert parsed.traceparent() == TRACEPARENT
    for bad in ("", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", f"ff-{TRACE_ID}-00f067aa0ba902b7-01", f"00-{TRACE_ID}-zz-01"):
        assert parse_traceparent(bad) is None, bad
    legacy = parse_cloud_trace_context(f"{TRACE_ID.upper()}/255;o=1")
    assert legacy is not None and (legacy.trace_id, legacy.span_id, legacy.sampled) == (TRACE_ID, "00000000000000ff", True)
    assert parse_cloud_trace_context("not-a-trace/1;o=1") is None


def test_every_step_of_an_onboarding_logs_the_trace_of_the_request_and_a_retry_carries_its_own(
    observed: tuple[LocalPlatform, io.StringIO],
) -> None:
    platform, logs = observed
    client = operator_client(platform.app)
    assert client.post(f"{API}/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    platform.bus.stop()  # the outage starts before any step runs
    assert client.post(f"{API}/onboard", json=SEED_REQUEST, headers={"traceparent": TRACEPARENT}).status_code == 202
    assert platform.services.faults is not None
    platform.services.faults.start_outage("warehouse.create_dataset")
    platform.bus.start()
    assert platform.bus.wait_idle(30)
    assert _settled(client, "customer_123")["status"] == "FAILED"

    onboarding = f"projects/{trace_project()}/traces/{TRACE_ID}"
    lines = _lines(logs)
    step_lines = [line for line in lines if line.get("step") and line.get("tenant_id", "customer_123") == "customer_123"]
    published = set(published_at_onboarding())  # the record-only steps are done by onboarding's own commit
    assert {line["step"] for line in step_lines if line["message"] == "step delivery handled"} == published
    assert step_lines and all(line.get(TRACE_FIELD) == onboarding for line in step_lines)
    failed_for_good = [line for line in lines if line["message"] == "step failed for good"]
    assert len(failed_for_good) == 1 and failed_for_good[0][TRACE_FIELD] == onboarding  # the dead-letter function's line
    for topic in (platform.services.settings.topics.step(step) for step in published):
        assert {parse_traceparent(attrs[TRACE_ATTRIBUTE]).trace_id for _, attrs in platform.bus.messages(topic)} == {TRACE_ID}  # type: ignore[union-attr]

    platform.services.faults.end_outage("warehouse.create_dataset")
    logs.truncate(0)
    logs.seek(0)
    retried = client.post(f"{API}/customer_123/retry", headers={"X-Cloud-Trace-Context": f"{RETRY_TRACE_ID}/1;o=1"})
    assert retried.status_code == 202
    assert _settled(client, "customer_123")["status"] == "ACTIVE"
    assert platform.bus.wait_idle(30)
    retry_lines = [line for line in _lines(logs) if line.get("step") in ("dataset", "view")]
    assert {line["step"] for line in retry_lines} == {"dataset", "view"}
    assert all(line[TRACE_FIELD] == f"projects/{trace_project()}/traces/{RETRY_TRACE_ID}" for line in retry_lines)
    activated = platform.bus.messages(platform.services.settings.topics.lifecycle)
    assert [parse_traceparent(attrs[TRACE_ATTRIBUTE]).trace_id for _, attrs in activated] == [RETRY_TRACE_ID]  # type: ignore[union-attr]


def test_an_error_answer_is_logged_with_http_request_and_the_callers_trace(observed: tuple[LocalPlatform, io.StringIO]) -> None:
    platform, logs = observed
    answer = operator_client(platform.app).get(f"{API}/nobody_here?x=1", headers={"traceparent": TRACEPARENT, "User-Agent": "probe/1"})
    assert answer.status_code == 404
    (line,) = [line for line in _lines(logs) if line["message"] == "request answered with an error"]
    assert line["severity"] == "WARNING" and line[TRACE_FIELD] == f"projects/{trace_project()}/traces/{TRACE_ID}"
    request = line["httpRequest"]
    assert (request["requestMethod"], request["requestUrl"], request["status"], request["userAgent"]) == (
        "GET",
        f"{API}/nobody_here?x=1",
        404,
        "probe/1",
    )
    assert request["latency"].endswith("s") and float(request["latency"][:-1]) >= 0
    unauthenticated = platform.app.test_client().get("/metrics")
    assert unauthenticated.status_code == 401
    assert "Bearer" not in json.dumps(_lines(logs)[-1])  # no credential in the line


def test_metrics_count_onboardings_steps_dead_letters_and_the_queue(observed: tuple[LocalPlatform, io.StringIO]) -> None:
    platform, _ = observed
    client = operator_client(platform.app)
    before = _samples(client.get("/metrics").get_data(as_text=True))
    for tenant_id in ("metrics_one", "metrics_two"):
        request = {**SEED_REQUEST, "tenant_id": tenant_id}
        client.post(f"{API}/dryrun", json=request)
        assert client.post(f"{API}/onboard?wait=30", json=request).status_code == 201
    failing = {**SEED_REQUEST, "tenant_id": "metrics_failed"}
    client.post(f"{API}/dryrun", json=failing)
    platform.bus.stop()
    assert client.post(f"{API}/onboard", json=failing).status_code == 202
    assert platform.services.faults is not None
    platform.services.faults.start_outage("warehouse.create_dataset")
    platform.bus.start()
    assert platform.bus.wait_idle(30)
    assert _settled(client, "metrics_failed")["status"] == "FAILED"

    scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.mimetype == "text/plain"
    after = _samples(scraped.get_data(as_text=True))

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("onboarding_onboardings_total", outcome="accepted") == 3
    assert delta("onboarding_onboardings_total", outcome="active") == 2
    assert delta("onboarding_onboardings_total", outcome="failed") == 1
    assert delta("onboarding_step_duration_seconds_count", step="view", outcome="done") == 2
    assert delta("onboarding_step_duration_seconds_count", step="dataset", outcome="done") == 2
    attempts = platform.services.settings.event_bus.max_attempts
    assert delta("onboarding_step_duration_seconds_count", step="dataset", outcome="error") == attempts
    assert after[("onboarding_dead_letter_backlog", ())] == 1
    depths = {dict(labels)["subscription"]: value for (name, labels), value in after.items() if name == "onboarding_bus_queue_depth"}
    assert f"{platform.services.settings.topics.step('dataset')}-push" in depths and set(depths.values()) == {0}
    assert delta("onboarding_http_requests_total", function="onboard_tenant", method="POST", status="201") == 2

    platform.services.faults.end_outage("warehouse.create_dataset")
    assert client.post(f"{API}/metrics_failed/retry").status_code == 202
    assert _settled(client, "metrics_failed")["status"] == "ACTIVE"
    assert _samples(client.get("/metrics").get_data(as_text=True))[("onboarding_dead_letter_backlog", ())] == 0


def test_the_log_based_metrics_deploy_sh_creates_match_lines_the_code_writes(observed: tuple[LocalPlatform, io.StringIO]) -> None:
    """Each metric's filter names a message the code logs, and the fields it extracts are on that line."""
    platform, logs = observed
    client = operator_client(platform.app)
    client.post(f"{API}/dryrun", json=SEED_REQUEST)
    assert client.post(f"{API}/onboard?wait=30", json=SEED_REQUEST).status_code == 201
    event = billing_message("evt-metrics-1", "customer_123", "plan_changed", 1, new_plan="SCALE")
    assert client.post("/api/v1/billing/events", json=event).status_code == 202
    failing = {**SEED_REQUEST, "tenant_id": "metrics_failed"}
    client.post(f"{API}/dryrun", json=failing)
    platform.bus.stop()
    assert client.post(f"{API}/onboard", json=failing).status_code == 202
    assert platform.services.faults is not None
    platform.services.faults.start_outage("warehouse.create_dataset")
    platform.bus.start()
    assert platform.bus.wait_idle(30)
    reconcile(platform.services, timedelta(0))

    lines = _lines(logs)
    for name, metric in log_metrics().items():
        message = re.search(r'jsonPayload\.message="([^"]+)"', metric["filter"]).group(1)  # type: ignore[union-attr]
        matching = [line for line in lines if line["message"] == message]
        assert matching, f"{name}: no line says {message!r}"
        fields = re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", json.dumps(metric))
        assert all(field in line for field in fields for line in matching), (name, fields)
        if "valueExtractor" in metric:
            assert all(isinstance(line[fields[0]], (int, float)) for line in matching)
    backlog = [line["open_dead_letters"] for line in lines if line["message"] == "dead-letter backlog"]
    assert backlog[-1] == 1


def test_an_admitted_pipeline_run_relayed_later_carries_the_trace_of_its_request(observed: tuple[LocalPlatform, io.StringIO]) -> None:
    """Pub/Sub is down at admission: the run waits in the outbox, and the reconciler's relay sends it with the admission's trace."""
    platform, _ = observed
    client = operator_client(platform.app)
    assert client.post(f"{API}/dryrun", json=SEED_REQUEST).get_json()["ready_for_onboarding"]
    created = client.post(f"{API}/onboard?wait=30", json=SEED_REQUEST)
    assert created.status_code == 201
    assert platform.services.faults is not None
    platform.services.faults.start_outage("bus.publish")
    admitted = platform.app.test_client().post(
        "/api/v1/pipelines/run/customer_123/gcp/sales/daily_load",
        headers={"X-API-Key": created.get_json()["api_key"], "traceparent": TRACEPARENT},
    )
    platform.services.faults.end_outage("bus.publish")
    assert admitted.status_code == 200, admitted.get_data(as_text=True)
    topic = platform.services.settings.topics.pipeline_runs
    assert platform.bus.messages(topic) == []
    assert reconcile(platform.services, timedelta(0)) == 1  # outside any request: no trace of its own
    assert [parse_traceparent(attrs[TRACE_ATTRIBUTE]).trace_id for _, attrs in platform.bus.messages(topic)] == [TRACE_ID]  # type: ignore[union-attr]
