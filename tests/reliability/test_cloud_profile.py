"""The Google Cloud profile trips each limit the way Google Cloud does: DML slots and queue, conflicts, rates, contention.

Threads are held at chosen points by the profile's own sleep (an event or a barrier), so
every outcome below follows from the model, never from how fast the machine is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.embedded.sqlite_document_store import SqliteDocumentStore
from shared.adapters.guarded import CallGuard, GuardedDocumentStore, GuardedWarehouse
from shared.cloud_profile import LATENCY, CloudProfile, ProfileRefused, classify_sql, profile_for
from shared.config import CallSettings, CloudProfileSettings
from shared.ports import RateLimited, Transaction, TransactionConflict, Warehouse
from tests.conftest import fast_settings

GCP = CloudProfileSettings(name="gcp", time_scale=1.0, seed=7)
TABLE = "tenant_platform.tenant_profiles"


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.005)


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def held() -> Iterator[threading.Event]:
    """An event every profiled wait in a worker thread blocks on until the test sets it."""
    release = threading.Event()
    yield release
    release.set()


def _worker_sleep(release: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if threading.current_thread() is not threading.main_thread():
            release.wait(20)

    return sleep


def _run_dml(profile: CloudProfile, outcomes: list[object], fn: Callable[[], object]) -> threading.Thread:
    def body() -> None:
        try:
            outcomes.append(profile.job("mutating_dml", TABLE, fn))
        except RateLimited as error:
            outcomes.append(error)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_statements_are_classified_by_what_bigquery_runs() -> None:
    assert classify_sql("-- upsert\nMERGE `c.tenant_profiles` AS t USING (SELECT 1) AS s ON TRUE") == ("mutating_dml", "c.tenant_profiles")
    assert classify_sql("UPDATE `c.tenant_profiles` SET status = 'x' WHERE TRUE") == ("mutating_dml", "c.tenant_profiles")
    assert classify_sql("INSERT INTO `c.runs` (a) VALUES (1)") == ("insert_dml", "c.runs")
    assert classify_sql("CREATE OR REPLACE VIEW `t.v` AS SELECT 1") == ("ddl", "t.v")
    assert classify_sql("SELECT * FROM `c.tenant_profiles`") == ("query", None)


def test_the_third_concurrent_dml_queues_and_the_23rd_outstanding_fails_with_bigquerys_text(held: threading.Event) -> None:
    profile = CloudProfile(GCP, "proj", sleep=_worker_sleep(held))
    committed: list[int] = []
    outcomes: list[object] = []
    threads = [_run_dml(profile, outcomes, lambda: committed.append(1)) for _ in range(3)]
    _wait_for(lambda: profile.outstanding_dml(TABLE) == (2, 1), "two running, the third queued")
    threads += [_run_dml(profile, outcomes, lambda: committed.append(1)) for _ in range(19)]
    _wait_for(lambda: profile.outstanding_dml(TABLE) == (2, 20), "two running, twenty queued")

    with pytest.raises(RateLimited) as refused:
        profile.job("mutating_dml", TABLE, lambda: committed.append(1))
    assert str(refused.value) == (
        "Resources exceeded during query execution: "
        "Too many DML statements outstanding against table proj:tenant_platform.tenant_profiles, limit is 20."
    )

    held.set()
    for thread in threads:
        thread.join(20)
    succeeded = [o for o in outcomes if not isinstance(o, Exception)]
    conflicted = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(succeeded) + len(conflicted) == 22
    assert len(committed) == len(succeeded)  # a refused or conflicted statement changed nothing
    assert all("due to concurrent update" in str(error) for error in conflicted)
    counts = profile.snapshot()
    assert counts["bigquery_dml_refused"] == 1
    assert counts["bigquery_dml_queued"] == 20
    assert counts["bigquery_dml_conflicts"] >= 1  # the first two ran side by side


def _two_merges(profile: CloudProfile, committed: list[int]) -> list[object]:
    outcomes: list[object] = []
    threads = [_run_dml(profile, outcomes, lambda: committed.append(1)) for _ in range(2)]
    for thread in threads:
        thread.join(20)
    return outcomes


def _first_two_waits_meet() -> Callable[[float], None]:
    """The first wait of each of two threads meets the other's: both took their snapshot before either commits."""
    barrier = threading.Barrier(2)
    calls = {"n": 0}
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            calls["n"] += 1
            first_round = calls["n"] <= 2
        if first_round:
            barrier.wait(20)

    return sleep


def test_two_concurrent_merges_on_one_table_end_in_one_serialization_error_without_reruns() -> None:
    profile = CloudProfile(GCP, "proj", sleep=_first_two_waits_meet(), dml_conflict_reruns=0)
    committed: list[int] = []
    outcomes = _two_merges(profile, committed)
    errors = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(outcomes) == 2 and len(errors) == 1 and len(committed) == 1
    assert str(errors[0]) == "Could not serialize access to table proj:tenant_platform.tenant_profiles due to concurrent update"


def test_bigquery_reruns_the_conflicting_merge_so_both_land() -> None:
    profile = CloudProfile(GCP, "proj", sleep=_first_two_waits_meet())
    committed: list[int] = []
    outcomes = _two_merges(profile, committed)
    assert not any(isinstance(o, Exception) for o in outcomes) and len(committed) == 2
    counts = profile.snapshot()
    assert counts["bigquery_dml_conflicts"] == 1 and counts["bigquery_dml_reruns"] == 1


def test_table_metadata_updates_beyond_five_per_ten_seconds_are_refused() -> None:
    clock = _Clock()
    profile = CloudProfile(GCP, "proj", sleep=lambda _: None, clock=clock)
    for _ in range(5):
        profile.job("ddl", "t.onboarding_validation_test", lambda: None)
    with pytest.raises(RateLimited, match="too many table update operations for this table"):
        profile.job("ddl", "t.onboarding_validation_test", lambda: None)
    profile.job("ddl", "other.onboarding_validation_test", lambda: None)  # the limit is per table
    clock.now += 10.01
    profile.job("ddl", "t.onboarding_validation_test", lambda: None)
    assert profile.snapshot()["bigquery_metadata_rate_limited"] == 1


class _CountingWarehouse(Warehouse):
    """Counts executions; nothing else."""

    def __init__(self) -> None:
        self.executed = 0

    def ping(self) -> None: ...

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return []

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self.executed += 1

    def append_rows(self, dataset: str, table: str, rows: list[dict[str, Any]]) -> None: ...

    def dataset_exists(self, dataset: str) -> bool:
        return True

    def create_dataset(self, dataset: str) -> bool:
        return True

    def delete_dataset(self, dataset: str) -> None: ...

    def table_columns(self, dataset: str, table: str) -> dict[str, str] | None:
        return None


def test_a_full_queue_reaches_the_caller_as_rate_limited_after_the_client_and_guard_retries(held: threading.Event) -> None:
    profile = CloudProfile(GCP, "proj", sleep=_worker_sleep(held))
    outcomes: list[object] = []
    threads = [_run_dml(profile, outcomes, lambda: None) for _ in range(22)]
    _wait_for(lambda: profile.outstanding_dml(TABLE) == (2, 20), "the table's queue full")
    inner = _CountingWarehouse()
    guard = CallGuard(CallSettings(attempts=2, min_backoff_seconds=0, max_backoff_seconds=0.001), None, profile)

    with pytest.raises(RateLimited, match=r"Too many DML statements outstanding against table proj:tenant_platform\.tenant_profiles"):
        GuardedWarehouse(inner, guard).execute(f"UPDATE `{TABLE}` SET status = 'ACTIVE' WHERE tenant_id = @t", {"t": "a"})

    assert inner.executed == 0
    assert profile.snapshot()["bigquery_dml_refused"] == 2 * 5  # 5 client attempts inside each of 2 guard attempts
    assert guard.snapshot()["rate_limited_unretried"] == 1
    held.set()
    for thread in threads:
        thread.join(20)


def _documents(tmp_path: Path, profile: CloudProfile) -> GuardedDocumentStore:
    return GuardedDocumentStore(SqliteDocumentStore(tmp_path / "docs.db"), CallGuard(CallSettings(), None, profile))


def test_writes_to_one_document_beyond_its_sustained_rate_are_aborted_for_contention(tmp_path: Path) -> None:
    clock = _Clock()
    profile = CloudProfile(GCP, "proj", sleep=lambda _: None, clock=clock)
    documents = _documents(tmp_path, profile)
    for version in range(5):  # a short burst is allowed
        documents.set("tenants", "hot", {"v": version})
    with pytest.raises(TransactionConflict, match="Too much contention on these documents"):
        documents.set("tenants", "hot", {"v": 5})
    documents.set("tenants", "cold", {"v": 0})  # the rate is per document

    clock.now += 1.0  # one second buys one more write
    documents.set("tenants", "hot", {"v": 6})
    with pytest.raises(TransactionConflict):
        documents.set("tenants", "hot", {"v": 7})

    def bump(transaction: Transaction) -> None:
        transaction.set("tenants", "hot", {"v": 8})

    with pytest.raises(TransactionConflict, match="Too much contention"):
        documents.run_transaction(bump, max_attempts=3)
    assert profile.snapshot()["firestore_aborted_attempts"] == 2  # the client re-ran it twice
    assert documents.get("tenants", "hot") == {"v": 6}


def test_overlapping_transactions_on_one_document_abort_and_rerun_until_both_apply(tmp_path: Path) -> None:
    barrier = threading.Barrier(2)
    local = threading.local()

    def sleep(seconds: float) -> None:
        local.waits = getattr(local, "waits", 0) + 1
        if local.waits in (2, 3):  # before the read, and before the commit: both read before either commits
            barrier.wait(20)

    profile = CloudProfile(GCP, "proj", sleep=sleep)
    documents = _documents(tmp_path, profile)
    documents.create("counters", "c", {"n": 0})
    local.waits = 10  # the main thread's create is not part of the meeting

    def increment(transaction: Transaction) -> None:
        current = transaction.get("counters", "c") or {"n": 0}
        transaction.set("counters", "c", {"n": current["n"] + 1})

    threads = [threading.Thread(target=documents.run_transaction, args=(increment,), daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert documents.get("counters", "c") == {"n": 2}
    assert profile.snapshot()["firestore_aborted_attempts"] >= 1


def test_every_wait_scales_with_the_time_scale() -> None:
    recorded: dict[float, list[float]] = {1.0: [], 0.01: []}
    for scale, waits in recorded.items():
        profile = CloudProfile(CloudProfileSettings(name="gcp", time_scale=scale, seed=3), sleep=waits.append)
        for kind in ("bigquery.query", "bigquery.mutating_dml", "firestore.commit", "pubsub.push", "functions.cold_start"):
            profile.wait(kind)
    assert [w * 0.01 for w in recorded[1.0]] == pytest.approx(recorded[0.01])
    query, _dml, commit, push, cold = recorded[1.0]
    assert LATENCY["bigquery.query"].low <= query <= LATENCY["bigquery.query"].high
    assert commit < query and push < cold  # a Firestore commit is faster than any BigQuery job


def test_a_push_subscription_starts_a_cold_instance_only_when_none_is_idle() -> None:
    waits: list[float] = []
    profile = CloudProfile(GCP, sleep=waits.append)
    handled: list[str] = []
    deliver = profile.push_handler("onboarding-view-push", handled.append)
    deliver("first")
    deliver("second")  # the first instance is idle again: warm
    assert handled == ["first", "second"]
    assert profile.snapshot()["cold_starts"] == 1 and profile.snapshot()["deliveries"] == 2
    settings = profile.bus_settings(fast_settings(Path("/tmp/unused")).event_bus)
    assert (settings.min_backoff_seconds, settings.max_backoff_seconds) == (10.0, 600.0)


def test_the_profile_is_chosen_by_settings_and_refused_where_it_cannot_apply(tmp_path: Path) -> None:
    assert profile_for(fast_settings(tmp_path)) is None
    chosen = profile_for(fast_settings(tmp_path, ONBOARDING_CLOUD_PROFILE="gcp", ONBOARDING_CLOUD_TIME_SCALE="0.01"))
    assert chosen is not None and chosen.scale == 0.01
    with pytest.raises(ProfileRefused, match="production"):
        profile_for(fast_settings(tmp_path, ONBOARDING_CLOUD_PROFILE="gcp", ONBOARDING_ENV="production"))
    with pytest.raises(ProfileRefused, match="gcp backend"):
        profile_for(fast_settings(tmp_path, ONBOARDING_CLOUD_PROFILE="gcp", ONBOARDING_BACKEND="gcp"))
