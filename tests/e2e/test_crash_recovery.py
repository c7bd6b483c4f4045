"""SIGKILL the real server (`make run`) at random moments while tenants onboard; nothing accepted is lost."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest
import requests

from scripts.chaos import INVARIANTS, check_invariants, request_body, view_commands_per_tenant
from shared.adapters.embedded.sqlite_event_bus import SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.bootstrap import build_embedded_services
from shared.domain.tenant import ALL_STEPS, TenantState
from shared.handlers.provisioning import applied_at_onboarding
from shared.handlers.step_commands import step_event_id
from shared.services import PROCESSED_EVENTS, TENANTS, VALIDATIONS
from tests.conftest import fast_settings
from tests.e2e.server import RunningServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KILLS = 10
TENANTS_PER_OPERATOR = 8
ENV = {
    "ONBOARDING_FAULTS": "delay_ms=0-50",  # spreads each step over time, so kills land mid-flight
    "ONBOARDING_BUS_ACK_DEADLINE_SECONDS": "5",
    "ONBOARDING_BUS_MIN_BACKOFF_SECONDS": "0.05",
    "ONBOARDING_BUS_MAX_BACKOFF_SECONDS": "0.5",
    "ONBOARDING_BUS_MAX_ATTEMPTS": "20",
}


class Operator:
    """Onboards tenants one after another, retrying through outages with the same Idempotency-Key."""

    def __init__(self, url: str, prefix: str, stop: threading.Event, token: str) -> None:
        self.url = url
        self.auth = {"Authorization": f"Bearer {token}"}
        self.prefix = prefix
        self.stop = stop
        self.validations: list[str] = []
        self.accepted: list[str] = []

    def _post(self, path: str, body: dict[str, object], headers: dict[str, str] | None = None) -> requests.Response:
        while True:
            try:
                response = requests.post(f"{self.url}{path}", json=body, headers={**self.auth, **(headers or {})}, timeout=10)
                if response.status_code != 503:
                    return response
            except requests.RequestException:
                pass  # the server is down: wait for the restart
            time.sleep(0.1)

    def run(self) -> None:
        pacing = random.Random(self.prefix)
        for index in range(TENANTS_PER_OPERATOR):
            if self.stop.is_set():
                return
            time.sleep(pacing.uniform(0.5, 2.5))  # spread over the kills
            tenant_id = f"{self.prefix}_{index:03d}"
            body = request_body(tenant_id)
            dry = self._post("/api/v1/tenants/dryrun", body)
            assert dry.status_code == 200, dry.text
            self.validations.append(dry.json()["validation_id"])
            onboard = self._post("/api/v1/tenants/onboard", body, {"Idempotency-Key": f"crash-{tenant_id}"})
            assert onboard.status_code == 202, onboard.text
            self.accepted.append(tenant_id)


@pytest.mark.timeout(900)  # up to 11 restarts of `make run` on a loaded machine
def test_sigkill_at_random_moments_loses_no_accepted_tenant_validation_or_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    rng = random.Random(5)
    stop = threading.Event()
    server = RunningServer(data_dir, port=port, extra_env=ENV)
    server.wait_ready()
    operators = [Operator(f"http://127.0.0.1:{port}", f"crash_{name}", stop, server.operator_token) for name in "abc"]
    threads = [threading.Thread(target=operator.run, daemon=True) for operator in operators]
    for thread in threads:
        thread.start()
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.3, 2.0))
        server.kill()
        server = RunningServer(data_dir, port=port, extra_env=ENV)
        server.wait_ready(90)
    stop.set()
    for thread in threads:
        thread.join(120)
    accepted = [tenant for operator in operators for tenant in operator.accepted]
    validations = [validation for operator in operators for validation in operator.validations]
    assert len(accepted) >= KILLS  # the run onboarded something between the kills

    deadline = time.monotonic() + 180
    pending = set(accepted)
    while pending and time.monotonic() < deadline:
        pending = {
            t for t in pending if server.session.get(f"{server.url}/api/v1/tenants/{t}", timeout=10).json().get("status") != "ACTIVE"
        }
        time.sleep(0.2)
    server.stop()
    assert not pending, f"never ACTIVE after {KILLS} kills: {sorted(pending)}"

    services = build_embedded_services(fast_settings(data_dir))
    try:
        documents, warehouse = unwrap(services.documents), unwrap(services.warehouse)
        bus = unwrap(services.bus)
        assert isinstance(bus, SqliteEventBus)
        published = {json.loads(data)["validation_id"] for data, _ in bus.messages(services.settings.topics.validations)}
        assert [v for v in validations if documents.get(VALIDATIONS, v) is None] == []
        assert [v for v in validations if v not in published] == []
        states = {tenant: TenantState.model_validate(documents.get(TENANTS, tenant)) for tenant in accepted}
        unprocessed = [
            step_event_id(state, step, 1)
            for state in states.values()
            for step in ALL_STEPS
            if step not in applied_at_onboarding()  # done by the onboarding's commit: no event of their own
            and documents.get(PROCESSED_EVENTS, step_event_id(state, step, 1)) is None
        ]
        assert unprocessed == []
        view_commands = view_commands_per_tenant(bus.messages(services.settings.topics.step("view")))
        broken = {
            f"{tenant}: {name}"
            for tenant in accepted
            for name, held in check_invariants(
                documents, warehouse, services.central, tenant, view_commands[tenant], plans=services.plans
            ).items()
            if not held
        }
        assert broken == set()
        assert set(INVARIANTS) == set(check_invariants(documents, warehouse, services.central, accepted[0], 1, plans=services.plans))
    finally:
        services.close()
    print(f"crash recovery: {KILLS} SIGKILLs survived, {len(accepted)} tenants accepted and ACTIVE, {len(validations)} validations kept")
