"""Fault specs parse into one model, are refused in production, and the guard turns them into retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.adapters.guarded import CallGuard, GuardedWarehouse
from shared.bootstrap import build_embedded_services
from shared.config import CallSettings
from shared.faults import FaultInjector, FaultPlan, FaultSpecError, injector_for, parse_faults
from shared.ports import BackendUnavailable, Warehouse
from tests.conftest import fast_settings


def test_the_documented_spec_parses_into_the_plan() -> None:
    plan = parse_faults("duplicate=0.5,fail_before=0.1,fail_after=0.1,delay_ms=0-300,reorder=1")
    assert plan == FaultPlan(duplicate=0.5, fail_before=0.1, fail_after=0.1, delay_ms=(0, 300), reorder=1.0)
    assert parse_faults("backend_delay_ms=7,outage=warehouse+documents.get") == FaultPlan(
        backend_delay_ms=(7, 7), outage=("warehouse", "documents.get")
    )


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("duplicate=2", "duplicate"),
        ("explode=0.1", "explode"),
        ("delay_ms=300-1", "delay"),
        ("delay_ms=soon", "delay"),
        ("outage=printer", "outage"),
        ("duplicate", "name=value"),
    ],
)
def test_a_bad_spec_is_refused_with_the_reason(spec: str, complaint: str) -> None:
    with pytest.raises(FaultSpecError, match=complaint):
        parse_faults(spec)


def test_faults_are_off_by_default_and_refused_in_production(tmp_path: Path) -> None:
    assert injector_for(fast_settings(tmp_path)) is None
    assert build_embedded_services(fast_settings(tmp_path / "a")).faults is None
    with pytest.raises(RuntimeError, match="refused in production"):
        injector_for(fast_settings(tmp_path, ONBOARDING_ENV="production", ONBOARDING_FAULTS="duplicate=0.1"))


def test_the_same_seed_draws_the_same_faults() -> None:
    plan = parse_faults("duplicate=0.5,fail_before=0.3,delay_ms=0-100")
    first, second = FaultInjector(plan, seed=3), FaultInjector(plan, seed=3)
    assert [first.delivery() for _ in range(50)] == [second.delivery() for _ in range(50)]
    assert any(d.duplicate for d in (FaultInjector(plan, seed=4).delivery() for _ in range(50)))


class _CountingWarehouse(Warehouse):
    """Counts the calls that reached the backend."""

    def __init__(self) -> None:
        self.pings = 0

    def ping(self) -> None:
        self.pings += 1

    def query(self, sql: str, params: dict[str, object] | None = None) -> list[dict[str, object]]:
        return []

    def execute(self, sql: str, params: dict[str, object] | None = None) -> None:
        return None

    def append_rows(self, dataset: str, table: str, rows: list[dict[str, object]]) -> None:
        return None

    def dataset_exists(self, dataset: str) -> bool:
        return False

    def create_dataset(self, dataset: str) -> bool:
        return True

    def delete_dataset(self, dataset: str) -> None:
        return None

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        return None


POLICY = CallSettings(timeout_seconds=0.05, attempts=3, min_backoff_seconds=0.001, max_backoff_seconds=0.002)


def test_an_injected_failure_is_retried_and_never_reaches_the_backend() -> None:
    injector = FaultInjector(FaultPlan())
    inner = _CountingWarehouse()
    guarded = GuardedWarehouse(inner, CallGuard(POLICY, injector))
    injector.fail_call("warehouse.ping")
    guarded.ping()
    assert inner.pings == 1
    assert injector.snapshot()["backend_failures"] == 1


def test_an_outage_fails_every_attempt_until_it_ends() -> None:
    injector = FaultInjector(parse_faults("outage=warehouse"))
    inner = _CountingWarehouse()
    guard = CallGuard(POLICY, injector)
    guarded = GuardedWarehouse(inner, guard)
    with pytest.raises(BackendUnavailable, match="outage"):
        guarded.ping()
    assert inner.pings == 0 and guard.snapshot()["retries"] == POLICY.attempts - 1
    injector.end_outage("warehouse")
    guarded.ping()
    assert inner.pings == 1


def test_a_hung_call_fails_at_its_deadline_as_backend_unavailable() -> None:
    injector = FaultInjector(parse_faults("backend_hang=1"))
    guard = CallGuard(POLICY.model_copy(update={"attempts": 1}), injector)
    with pytest.raises(BackendUnavailable, match="deadline"):
        GuardedWarehouse(_CountingWarehouse(), guard).ping()
    assert guard.snapshot()["timeouts"] == 1
