"""Every deployed function's real entry point (main.py), run through every path it has, on embedded backends.

The ports are wrapped by `shared.adapters.recording`, so what comes out is, per function
(service account), each IAM permission it used on each resource. Messages are delivered by
hand the way Pub/Sub and Eventarc would (functions.topology says which function each topic
triggers): a handler that raises is redelivered, and after `MAX_DELIVERIES` the message goes
to the dead-letter topic, forwarded by Pub/Sub's own service agent (not by our function).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask
from cloudevents.http import CloudEvent

from functions.topology import EVENT_TRIGGERS, entry_point
from schemas.events import StepRequested
from shared import sql
from shared.adapters.recording import UNATTRIBUTED, PermissionRecorder, RecordingEventBus, record_services
from shared.bootstrap import build_embedded_services, load_settings
from shared.domain.steps import prerequisites_of, step_names
from shared.entrypoints.events import PUBSUB_MESSAGE_PUBLISHED
from shared.entrypoints.runtime import install_services
from shared.handlers.dead_letters import dead_letter_topic
from shared.handlers.provisioning import action_of
from shared.handlers.warehouse_setup import ensure_central_tables
from shared.ports import EXPIRE_AT
from shared.ports.permissions import Access
from shared.services import PIPELINE_RUNS, VALIDATIONS, Services

# deploy.sh sets --max-delivery-attempts to this (Pub/Sub accepts 5 to 100).
MAX_DELIVERIES = 5
PROJECT = "demo-project"
Message = tuple[str, bytes, dict[str, str]]
KEY_1 = {"Idempotency-Key": "iam-key-1"}
# Operators' routes are called with an operator's credential; a tenant's route with its API key only.
OPERATOR_TOKEN = uuid.uuid4().hex
TENANT_ROUTES = frozenset({"tenant_overview", "run_pipeline"})


@dataclass
class Clock:
    """A clock the exercise moves forward (retention, staleness), never back."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move forward by `delta`."""
        self.now += delta


def _cloud_event(topic: str, data: bytes, attributes: dict[str, str], attempt: int) -> CloudEvent:
    """The CloudEvent Eventarc delivers for one Pub/Sub message."""
    message_id = uuid.uuid4().hex
    published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return CloudEvent(
        {
            "type": PUBSUB_MESSAGE_PUBLISHED,
            "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{topic}",
            "id": message_id,
            "time": published,
            "specversion": "1.0",
            "datacontenttype": "application/json",
        },
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": attributes,
                "messageId": message_id,
                "publishTime": published,
                "deliveryAttempt": attempt,
            },
            "subscription": f"projects/{PROJECT}/subscriptions/{topic}-sub",
        },
    )


class Exercise:
    """Embedded services behind a recorder, and the calls that walk every path of every function."""

    def __init__(self, data_dir: Path) -> None:
        settings = load_settings(
            {
                "ONBOARDING_DATA_DIR": str(data_dir),
                "ONBOARDING_FAULTS": "delay_ms=0",  # an injector with nothing armed: outages are started by hand
                "ONBOARDING_CALL_ATTEMPTS": "1",
                "ONBOARDING_OPERATOR_TOKEN": OPERATOR_TOKEN,
            }
        )
        self.base = build_embedded_services(settings)
        # The central tables come from the bootstrap command, run by the deployer (docs/google-cloud.md), not by a function.
        ensure_central_tables(self.base.warehouse, self.base.central)
        self.recorder = PermissionRecorder()
        self.clock = Clock()
        self.services: Services = replace(record_services(self.base, self.recorder), clock=self.clock)
        bus = self.services.bus
        assert isinstance(bus, RecordingEventBus)
        self.bus = bus
        self.topics = settings.topics
        self.routes: dict[str, tuple[str, str | None]] = {}
        for trigger in EVENT_TRIGGERS:
            topic = trigger.topic(settings.topics)
            dead_letters = dead_letter_topic(topic) if trigger.dead_letter_function else None
            self.routes[topic] = (trigger.function, dead_letters)
            if dead_letters and trigger.dead_letter_function:
                self.routes[dead_letters] = (trigger.dead_letter_function, None)
        self.delivered: list[Message] = []
        self._app = flask.Flask("iam-usage")

    # ------------------------------------------------------------ calling functions

    def http(self, function: str, call: str, expect: int, body: Any = None, *, headers: dict[str, str] | None = None) -> Any:
        """Call an HTTP function's entry point as Cloud Run would (`call` is "METHOD /path"); the status must be `expect`."""
        method, path = call.split(" ", 1)
        credential = {} if function in TENANT_ROUTES else {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        context = self._app.test_request_context(path, method=method, json=body, headers={**credential, **(headers or {})})
        with context, self.recorder.acting_as(function):
            response = entry_point(function)(flask.request)
        assert response.status_code == expect, (function, call, response.status_code, response.get_data(as_text=True))
        return response.get_json(silent=True)

    def event(self, function: str, topic: str, data: bytes, attributes: dict[str, str] | None = None, attempt: int = 1) -> None:
        """One delivery of a message to an event function."""
        with self.recorder.acting_as(function):
            entry_point(function)(_cloud_event(topic, data, attributes or {}, attempt))

    def inject(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> None:
        """A message some other publisher (a billing system, a bad actor) put on `topic`."""
        self.bus.published.append((topic, data, attributes or {}))

    def deliver(self, failing: frozenset[str] = frozenset(), drop: Callable[[Message], bool] | None = None) -> None:
        """Deliver every queued message; topics in `failing` meet a backend outage; `drop` loses some.

        The outage takes the warehouse and the document store's transactions: a step that only
        records something in the state document fails too.
        """
        while self.bus.published:
            message = self.bus.published.pop(0)
            topic, data, attributes = message
            route = self.routes.get(topic)
            if route is None or (drop is not None and drop(message)):
                continue  # no function subscribes (validations, lifecycle), or the message is lost on purpose
            self.delivered.append(message)
            function, dead_letters = route
            outage = self._outage("warehouse", "documents.run_transaction") if topic in failing else nullcontext()
            with outage:
                for attempt in range(1, MAX_DELIVERIES + 1):
                    try:
                        self.event(function, topic, data, attributes, attempt)
                        break
                    except Exception:
                        if attempt < MAX_DELIVERIES:
                            continue
                        if dead_letters is None:
                            raise  # a function with no dead-letter topic must not fail in any path walked here
                        forwarded = {
                            **attributes,
                            "CloudPubSubDeadLetterSourceSubscription": f"{topic}-sub",
                            "CloudPubSubDeadLetterSourceDeliveryCount": str(attempt),
                        }
                        self.inject(dead_letters, data, forwarded)

    @contextmanager
    def _outage(self, *targets: str) -> Iterator[None]:
        faults = self.services.faults
        assert faults is not None
        for target in targets:
            faults.start_outage(target)
        try:
            yield
        finally:
            for target in targets:
                faults.end_outage(target)

    # ------------------------------------------------------------ building blocks

    def request(self, tenant_id: str, **extra: Any) -> dict[str, Any]:
        """An onboarding request body."""
        return {
            "tenant_id": tenant_id,
            "company_name": f"Company {tenant_id}",
            "admin_email": f"admin@{tenant_id.replace('_', '-')}.example.com",
            "subscription_plan": "PROFESSIONAL",
            **extra,
        }

    def onboard(self, tenant_id: str, query: str = "", headers: dict[str, str] | None = None, **extra: Any) -> Any:
        """A passing dry run, then an onboarding; returns the onboarding's body."""
        body = self.request(tenant_id, **extra)
        dry_body = {key: body[key] for key in ("tenant_id", "company_name", "admin_email", "subscription_plan")}
        assert self.http("dryrun", "POST /api/v1/tenants/dryrun", 200, dry_body)["ready_for_onboarding"]
        return self.http("onboard_tenant", f"POST /api/v1/tenants/onboard{query}", 202, body, headers=headers)

    def status(self, tenant_id: str) -> str:
        """The tenant's status, through tenant_status."""
        return str(self.http("tenant_status", f"GET /api/v1/tenants/{tenant_id}", 200)["status"])

    def billing(self, event_id: str, tenant_id: str, kind: str, minutes: int, new_plan: str | None = None) -> None:
        """A billing message through billing_events_http (which publishes it on billing-events)."""
        body: dict[str, Any] = {
            "event_id": event_id,
            "tenant_id": tenant_id,
            "type": kind,
            "occurred_at": (datetime(2026, 3, 1, 9, tzinfo=UTC) + timedelta(minutes=minutes)).isoformat(),
            "source": "iam-check",
        }
        if new_plan is not None:
            body["new_plan"] = new_plan
        self.http("billing_events_http", "POST /api/v1/billing/events", 202, body)

    def scheduled(self, function: str, topic: str) -> None:
        """What Cloud Scheduler's job publishes on the function's topic, delivered once."""
        self.event(function, topic, b'{"job": "scheduled"}')

    # ------------------------------------------------------------ the paths

    def run(self) -> dict[str, set[Access]]:
        """Walk every path of every function; returns the permissions each function used."""
        install_services(self.services)
        try:
            self._onboarding()
            self._step_failures_and_retries()
            self._poison_and_orphans()
            self._billing()
            self._pipeline_runs()
            self._administration()
            self._reconcile()
            self._purge()
            self._sweep()
        finally:
            install_services(None)
        stray = self.recorder.used.get(UNATTRIBUTED)
        assert not stray, f"port calls outside any function: {sorted(stray)}"
        return self.recorder.used

    def close(self) -> None:
        """Release the embedded backends."""
        self.base.close()

    def _onboarding(self) -> None:
        http = self.http
        http("healthz", "GET /healthz", 200)
        failing = self.request("iam_bad_email", admin_email="not-an-address")
        assert http("dryrun", "POST /api/v1/tenants/dryrun", 200, failing)["status"] == "FAILED"
        http("dryrun", "POST /api/v1/tenants/dryrun", 422, {"tenant_id": "iam_x"})
        http("onboard_tenant", "POST /api/v1/tenants/onboard", 412, self.request("iam_no_dry_run"))
        first = self.onboard("iam_main", headers=KEY_1)
        replay = http("onboard_tenant", "POST /api/v1/tenants/onboard", 202, self.request("iam_main"), headers=KEY_1)
        assert replay["api_key"] == first["api_key"]
        assert http("onboard_tenant", "POST /api/v1/tenants/onboard", 422, self.request("iam_other"), headers=KEY_1)
        http("onboard_tenant", "POST /api/v1/tenants/onboard", 409, self.request("iam_main"))
        self.onboard("iam_waiting", query="?wait=1")  # times out while PROVISIONING: 202
        http("tenant_overview", "GET /api/v1/tenants/iam_waiting/overview", 403, headers={"X-API-Key": first["api_key"]})
        self.deliver()
        for message in list(self.delivered):  # at least once: every step command again
            self.inject(*message)
        self.deliver()
        assert self.status("iam_main") == self.status("iam_waiting") == "ACTIVE"
        self.main_key = str(first["api_key"])
        http("tenant_overview", "GET /api/v1/tenants/iam_main/overview", 200, headers={"X-API-Key": self.main_key})
        http("tenant_overview", "GET /api/v1/tenants/iam_main/overview", 401)
        http("tenant_status", "GET /api/v1/tenants/iam_nobody", 404)
        http("tenant_status", "GET /api/v1/tenants?status=ACTIVE&plan=PROFESSIONAL&limit=1", 200)
        http("tenant_status", "GET /api/v1/tenants?status=LOST", 422)

    def _step_failures_and_retries(self) -> None:
        http = self.http
        # A record-only step without prerequisites is done by the onboarding's own commit: nothing
        # is delivered to its function, which runs only on a retry or a late duplicate (below).
        for step in (name for name in step_names() if prerequisites_of(name) or action_of(name).effects is not None):
            tenant_id = f"iam_fails_{step}"
            self.onboard(tenant_id)
            self.deliver(failing=frozenset({self.topics.step(step)}))
            assert self.status(tenant_id) == "FAILED", step
            retried = http("retry_tenant_steps", f"POST /api/v1/tenants/{tenant_id}/retry", 202)
            assert retried["retried_steps"] == [step], retried
            self.deliver()
            assert self.status(tenant_id) == "ACTIVE", step
        stale = next(message for message in self.delivered if message[2].get("event_id", "").startswith("iam_fails_dataset."))
        self.inject(*stale)  # the first generation's command, after the retry: stale
        self.deliver()
        http("retry_tenant_steps", "POST /api/v1/tenants/iam_main/retry", 409)
        http("retry_tenant_steps", "POST /api/v1/tenants/iam_nobody/retry", 404)
        http("dead_letters", "GET /api/v1/dead-letters", 200)
        http("dead_letters", "GET /api/v1/dead-letters?status=OPEN", 200)
        http("dead_letters", "GET /api/v1/dead-letters?tenant_id=iam_fails_view", 200)
        http("dead_letters", "GET /api/v1/dead-letters?status=LOST", 422)

    def _poison_and_orphans(self) -> None:
        for step in step_names():
            topic = self.topics.step(step)
            self.inject(topic, b"not json")
            ghost = StepRequested(
                event_id=f"iam_ghost.1.{step}.1", tenant_id="iam_ghost", step=step, generation=1, occurred_at=self.services.now()
            )  # type: ignore[arg-type]
            self.inject(topic, ghost.model_dump_json().encode(), {"tenant_id": "iam_ghost", "event_id": ghost.event_id})
        self.deliver()
        # Datasets a tenant id already names, left by an earlier system: recreated, or their tables recreated.
        for tenant_id in ("iam_orphan_dataset", "iam_orphan_tables"):
            self.base.warehouse.create_dataset(tenant_id)
            for statement in sql.statements(sql.render("tenant_tables", dataset=tenant_id)):
                self.base.warehouse.execute(statement)
        self.onboard("iam_orphan_dataset", force_recreate_dataset=True)
        self.onboard("iam_orphan_tables", force_recreate_tables=True)
        self.deliver()
        assert self.status("iam_orphan_dataset") == self.status("iam_orphan_tables") == "ACTIVE"

    def _billing(self) -> None:
        http, tenant = self.http, "iam_main"
        self.billing("iam-bill-1", tenant, "plan_changed", 0, "STARTER")
        self.billing("iam-bill-2", tenant, "payment_failed", 10)
        self.deliver()
        assert self.status(tenant) == "SUSPENDED"
        http("tenant_overview", f"GET /api/v1/tenants/{tenant}/overview", 403, headers={"X-API-Key": self.main_key})
        self.billing("iam-bill-3", tenant, "payment_recovered", 20)
        self.billing("iam-bill-4", tenant, "payment_failed", 5)  # older than the recovery: ignored
        self.billing("iam-bill-5", tenant, "plan_changed", 25, "NO_SUCH_PLAN")  # refused
        self.billing("iam-bill-6", "iam_nobody", "payment_failed", 30)  # unknown tenant: dead letter
        self.onboard("iam_billing_early")
        self.billing("iam-bill-7", "iam_billing_early", "payment_failed", 30)  # still provisioning: dead letter
        self.inject(self.topics.billing, b'{"event_id": "iam-bill-8"}')  # malformed: dead letter
        http("billing_events_http", "POST /api/v1/billing/events", 422, {"event_id": "iam-bill-9"})
        self.deliver()
        self.inject(*next(message for message in self.delivered if message[2].get("event_id") == "iam-bill-3"))  # duplicate
        self.deliver()
        assert self.status(tenant) == "ACTIVE"
        http("tenant_events_http", f"GET /api/v1/tenants/{tenant}/events", 200)
        http("tenant_events_http", "GET /api/v1/tenants/iam_nobody/events", 404)

    def _report(self, run_id: str, status: str, event_id: str) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "pipeline_logging_id": run_id,
            "tenant_id": "iam_runs",
            "status": status,
            "occurred_at": self.clock.now.isoformat(),
        }

    def _pipeline_runs(self) -> None:
        self.runs_key = str(self.onboard("iam_runs")["api_key"])
        self.deliver()
        http, key = self.http, {"X-API-Key": self.runs_key}
        run = "POST /api/v1/pipelines/run/iam_runs/gcp/cost/billing"
        first = http("run_pipeline", run, 200, headers={**key, **KEY_1})
        assert http("run_pipeline", run, 200, headers={**key, **KEY_1}) == first  # the same key: admitted once
        http("run_pipeline", run, 200, {"date": "2026-03-01", "parameters": {"region": "eu"}}, headers=key)
        running = [http("run_pipeline", run, 200, headers=key)["pipeline_logging_id"] for _ in range(3)]
        http("run_pipeline", run, 429, headers=key)  # PROFESSIONAL: 5 at once
        http("run_pipeline", "POST /api/v1/pipelines/run/iam_runs/gcp/cost/-bad", 422, headers=key)
        http("run_pipeline", run, 401)
        results = "POST /api/v1/pipelines/results"
        done = self._report(first["pipeline_logging_id"], "SUCCEEDED", "iam-run-1")
        http("pipeline_results_http", results, 200, done)
        assert http("pipeline_results_http", results, 200, done)["outcome"] == "ignored"
        http("pipeline_results_http", results, 404, self._report("iam-no-such-run", "FAILED", "iam-run-2"))
        topic = self.topics.pipeline_run_results
        for index, (run_id, status) in enumerate(((running[0], "RUNNING"), (running[1], "FAILED"), ("iam-ghost-run", "FAILED"))):
            self.inject(topic, json.dumps(self._report(run_id, status, f"iam-run-{index + 3}")).encode(), {"tenant_id": "iam_runs"})
        self.inject(topic, b"not json")
        self.deliver()
        # Past the lease: the next admission times out the runs that never reported, lazily.
        self.clock.advance(timedelta(seconds=self.services.settings.pipeline_runs.lease_seconds + 1))
        self.left_running = http("run_pipeline", run, 200, headers=key)["pipeline_logging_id"]  # timed out by the sweep

    def _administration(self) -> None:
        http, tenant, reason = self.http, "iam_waiting", {"reason": "iam check"}
        rotated = http("tenant_admin", f"POST /api/v1/tenants/{tenant}/api-keys/rotate", 200, reason)
        http("tenant_admin", f"POST /api/v1/tenants/{tenant}/api-keys/revoke", 200, {**reason, "key_id": rotated["previous_key_id"]})
        http("tenant_admin", f"POST /api/v1/tenants/{tenant}/api-keys/rotate", 200, reason)
        http("tenant_admin", f"POST /api/v1/tenants/{tenant}/suspend", 200, reason)
        http("tenant_admin", f"POST /api/v1/tenants/{tenant}/resume", 200, reason)
        http("tenant_admin", f"POST /api/v1/tenants/{tenant}/offboard", 200, reason)
        http("tenant_admin", f"POST /api/v1/tenants/{tenant}/resume", 409, reason)
        http("tenant_admin", "POST /api/v1/tenants/iam_nobody/suspend", 404, reason)
        http("tenant_admin", f"POST /api/v1/tenants/{tenant}/suspend", 422, {})
        self.deliver()

    def _reconcile(self) -> None:
        # A crash between a commit and its publish, modelled as a bus outage at that moment: the
        # commands stay in the outbox. iam_stranded keeps its root step commands there;
        # iam_stranded_view only its view command, released by its last prerequisite.
        body = self.request("iam_stranded")
        assert self.http("dryrun", "POST /api/v1/tenants/dryrun", 200, body)["ready_for_onboarding"]
        with self._outage("bus"):
            self.http("onboard_tenant", "POST /api/v1/tenants/onboard", 202, body)
            # An admitted run whose publish fails stays in the outbox; the reconciler publishes it.
            run = "POST /api/v1/pipelines/run/iam_runs/gcp/cost/billing"
            self.http("run_pipeline", run, 200, headers={"X-API-Key": self.runs_key})
        self.onboard("iam_stranded_view")
        with self._outage("bus"):
            self.deliver()
        self.clock.advance(timedelta(minutes=20))
        self.scheduled("reconcile_steps", "tenant-reconcile")
        self.deliver()
        assert self.status("iam_stranded") == self.status("iam_stranded_view") == "ACTIVE"

    def _sweep(self) -> None:
        # Every lifetime over: the scheduled sweep deletes what carries an expire_at that has passed.
        self.clock.advance(timedelta(days=40))
        self.scheduled("sweep_expired_records", "records-sweep")
        assert not list(self.base.documents.scan(VALIDATIONS, EXPIRE_AT))
        left = self.base.documents.get(PIPELINE_RUNS, self.left_running)
        assert left is not None and (left["status"], left["reason"]) == ("FAILED", "TIMED_OUT"), left

    def _purge(self) -> None:
        http = self.http
        self.billing("iam-bill-10", "iam_main", "subscription_cancelled", 40)
        self.billing("iam-bill-11", "iam_main", "payment_recovered", 50)  # after the cancellation: refused
        self.deliver()
        assert self.status("iam_main") == "OFFBOARDED"
        assert http("purge_expired_http", "POST /api/v1/tenants/purge-expired", 200)["retained"] >= 1
        self.clock.advance(timedelta(days=31))
        assert "iam_main" in http("purge_expired_http", "POST /api/v1/tenants/purge-expired", 200)["purged"]
        self.billing("iam-bill-12", "iam_stranded", "subscription_cancelled", 60)
        self.deliver()
        self.clock.advance(timedelta(days=31))
        self.scheduled("purge_expired", "tenant-purge")
        http("tenant_status", "GET /api/v1/tenants/iam_stranded", 404)


def record_usage(data_dir: Path) -> dict[str, set[Access]]:
    """Run the exercise on a fresh data dir; the permissions each function used."""
    exercise = Exercise(data_dir)
    try:
        return exercise.run()
    finally:
        exercise.close()
