"""The embedded bus injects the faults it is told to, and a hung handler never wedges it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shared.adapters.embedded.duckdb_warehouse import DuckdbWarehouse
from shared.adapters.embedded.sqlite_event_bus import ReceivedMessage, SqliteEventBus
from shared.faults import FaultInjector, parse_faults
from shared.ports import BackendUnavailable
from tests.contract.conftest import BUS_SETTINGS


def _bus(tmp_path: Path, spec: str, **settings: float) -> SqliteEventBus:
    return SqliteEventBus(tmp_path / "events.db", BUS_SETTINGS.model_copy(update=settings), FaultInjector(parse_faults(spec), seed=1))


def _wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_fail_before_never_runs_the_handler_and_ends_in_dead_letters(tmp_path: Path) -> None:
    bus = _bus(tmp_path, "fail_before=1")
    ran: list[int] = []
    bus.create_subscription("s", "topic", dead_letter_topic="dl")
    bus.subscribe("s", lambda message: ran.append(message.delivery_attempt))
    bus.publish("topic", b"x")
    bus.start()
    _wait_for(lambda: bus.messages("dl"))
    bus.close()
    assert ran == []
    [(data, attributes)] = bus.messages("dl")
    assert data == b"x" and "before the handler ran" in attributes["dead_letter_reason"]
    assert bus.stats.injected_failures == BUS_SETTINGS.max_attempts


def test_fail_after_runs_the_handler_then_loses_the_ack_so_it_comes_again(tmp_path: Path) -> None:
    bus = _bus(tmp_path, "fail_after=1")
    ran: list[int] = []
    bus.create_subscription("s", "topic")
    bus.subscribe("s", lambda message: ran.append(message.delivery_attempt))
    bus.publish("topic", b"x")
    bus.start()
    _wait_for(lambda: len(ran) >= BUS_SETTINGS.max_attempts)
    assert bus.wait_idle(5)
    bus.close()
    assert ran == list(range(1, BUS_SETTINGS.max_attempts + 1))
    assert bus.stats.acked == 0 and bus.stats.dead_lettered == 1


def test_duplicate_delivers_each_message_twice_at_once(tmp_path: Path) -> None:
    bus = _bus(tmp_path, "duplicate=1")
    seen: list[bytes] = []
    lock = threading.Lock()

    def record(message: ReceivedMessage) -> None:
        with lock:
            seen.append(message.data)

    bus.create_subscription("s", "topic")
    bus.subscribe("s", record)
    for index in range(5):
        bus.publish("topic", str(index).encode())
    bus.start()
    assert bus.wait_idle(10)
    bus.close()
    assert sorted(seen) == sorted([str(index).encode() for index in range(5)] * 2)
    assert bus.stats.duplicates == 5


def test_reorder_delivers_out_of_publish_order(tmp_path: Path) -> None:
    bus = _bus(tmp_path, "reorder=1", workers=1)
    order: list[int] = []
    bus.create_subscription("s", "topic")
    bus.subscribe("s", lambda message: order.append(int(message.data)))
    for index in range(30):
        bus.publish("topic", str(index).encode())
    bus.start()
    assert bus.wait_idle(10)
    bus.close()
    assert sorted(order) == list(range(30)) and order != list(range(30))


def test_a_hung_handler_is_replaced_and_its_message_redelivered(tmp_path: Path) -> None:
    bus = SqliteEventBus(tmp_path / "events.db", BUS_SETTINGS.model_copy(update={"workers": 1, "ack_deadline_seconds": 0.3}))
    release = threading.Event()
    handled: list[tuple[bytes, int]] = []

    def hangs_once(message: ReceivedMessage) -> None:
        if message.data == b"hang" and message.delivery_attempt == 1:
            release.wait(30)  # a backend that never answers
            return
        handled.append((message.data, message.delivery_attempt))

    bus.create_subscription("s", "topic")
    bus.subscribe("s", hangs_once)
    bus.publish("topic", b"hang")
    bus.start()
    _wait_for(lambda: bus.stats.workers_replaced >= 1)
    bus.publish("topic", b"next")
    _wait_for(lambda: len(handled) >= 2)
    release.set()  # the late handler returns; its outcome no longer counts
    _wait_for(lambda: bus.stats.stale_outcomes >= 1, timeout=5)
    bus.close()
    assert (b"hang", 2) in handled and (b"next", 1) in handled
    assert bus.stats.handler_timeouts >= 1 and bus.stats.stale_outcomes >= 1


def test_leases_of_a_killed_process_are_recovered_at_start(tmp_path: Path) -> None:
    slow = BUS_SETTINGS.model_copy(update={"ack_deadline_seconds": 600})
    crashed = SqliteEventBus(tmp_path / "events.db", slow)
    crashed.create_subscription("s", "topic")
    crashed.subscribe("s", lambda message: None)
    crashed.publish("topic", b"in flight")
    assert crashed._claim() is not None  # leased for ten minutes, then the process dies
    crashed._db.close()

    restarted = SqliteEventBus(tmp_path / "events.db", slow)
    got: list[int] = []
    restarted.subscribe("s", lambda message: got.append(message.delivery_attempt))
    restarted.start()
    assert restarted.wait_idle(5)
    restarted.close()
    assert got == [2]


def test_a_warehouse_statement_past_its_deadline_is_interrupted(tmp_path: Path) -> None:
    warehouse = DuckdbWarehouse(tmp_path / "w.duckdb", timeout_seconds=2.0)
    try:
        with pytest.raises(BackendUnavailable, match="deadline"):
            warehouse.query(
                "SELECT COUNT(*) AS n FROM UNNEST(GENERATE_ARRAY(1, 200000)) AS a CROSS JOIN UNNEST(GENERATE_ARRAY(1, 200000)) AS b"
            )
        assert warehouse.query("SELECT 1 AS ok") == [{"ok": 1}]
    finally:
        warehouse.close()


def test_a_dead_letter_is_settled_and_forwarded_in_one_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bus = SqliteEventBus(tmp_path / "events.db", BUS_SETTINGS.model_copy(update={"ack_deadline_seconds": 0.05}))
    bus.create_subscription("s", "topic", dead_letter_topic="dl")

    def always_fails(message: ReceivedMessage) -> None:
        raise RuntimeError("always fails")

    bus.subscribe("s", always_fails)
    bus.publish("topic", b"x")
    insert_message = SqliteEventBus._insert_message

    def crash_on_the_dead_letter(conn: object, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        if topic == "dl":
            raise OSError("crash between settling the delivery and forwarding it")
        return insert_message(conn, topic, data, attributes)  # type: ignore[arg-type]

    monkeypatch.setattr(SqliteEventBus, "_insert_message", staticmethod(crash_on_the_dead_letter))
    for _ in range(BUS_SETTINGS.max_attempts - 1):
        _wait_for(bus.deliver_one, timeout=5)
    with pytest.raises(OSError):
        _wait_for(bus.deliver_one, timeout=5)
    assert bus.messages("dl") == [] and bus.pending_count() == 1, "a failed forward must leave the delivery pending"

    monkeypatch.setattr(SqliteEventBus, "_insert_message", staticmethod(insert_message))
    _wait_for(bus.deliver_one, timeout=5)  # the lease ran out: claimed again, dead-lettered for real
    assert [data for data, _ in bus.messages("dl")] == [b"x"] and bus.pending_count() == 0
    assert bus.stats.dead_lettered == 1
    bus.close()
