"""EventBus contract for the embedded bus: at-least-once, retry with backoff, dead letters, durability.

(Pub/Sub's own delivery is exercised through its emulator in the emulator suites.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from shared.adapters.embedded.sqlite_event_bus import ReceivedMessage, SqliteEventBus
from tests.contract.conftest import BUS_SETTINGS


def _bus(tmp_path: Path) -> SqliteEventBus:
    return SqliteEventBus(tmp_path / "events.db", BUS_SETTINGS)


def test_every_subscription_gets_every_message(tmp_path: Path) -> None:
    bus = _bus(tmp_path)
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    for name in got:
        bus.create_subscription(name, "topic")
        bus.subscribe(name, lambda message, name=name: got[name].append(message.data))
    for index in range(5):
        bus.publish("topic", str(index).encode(), {"k": "v"})
    bus.start()
    assert bus.wait_idle(5)
    bus.close()
    assert sorted(got["a"]) == sorted(got["b"]) == [b"0", b"1", b"2", b"3", b"4"]


def test_a_failing_handler_is_retried_then_succeeds(tmp_path: Path) -> None:
    bus = _bus(tmp_path)
    attempts: list[int] = []

    def flaky(message: ReceivedMessage) -> None:
        attempts.append(message.delivery_attempt)
        if message.delivery_attempt < 3:
            raise RuntimeError("not yet")

    bus.create_subscription("s", "topic")
    bus.subscribe("s", flaky)
    bus.publish("topic", b"x")
    bus.start()
    assert bus.wait_idle(5)
    bus.close()
    assert attempts == [1, 2, 3]


def test_exhausted_attempts_go_to_the_dead_letter_topic_with_the_reason(tmp_path: Path) -> None:
    bus = _bus(tmp_path)
    dead: list[ReceivedMessage] = []

    def always_fails(message: ReceivedMessage) -> None:
        raise RuntimeError("warehouse down")

    bus.create_subscription("s", "topic", dead_letter_topic="topic-dead-letter")
    bus.subscribe("s", always_fails)
    bus.create_subscription("dl", "topic-dead-letter")
    bus.subscribe("dl", dead.append)
    bus.publish("topic", b"payload", {"tenant_id": "t1"})
    bus.start()
    deadline = time.monotonic() + 5
    while not dead and time.monotonic() < deadline:
        time.sleep(0.01)
    bus.close()
    assert len(dead) == 1
    letter = dead[0]
    assert letter.data == b"payload"
    assert letter.attributes["tenant_id"] == "t1"
    assert letter.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(BUS_SETTINGS.max_attempts)
    assert "warehouse down" in letter.attributes["dead_letter_reason"]


def test_messages_survive_a_restart(tmp_path: Path) -> None:
    first = _bus(tmp_path)
    first.create_subscription("s", "topic")
    first.publish("topic", b"kept")
    first.close()

    second = _bus(tmp_path)
    got: list[bytes] = []
    second.subscribe("s", lambda message: got.append(message.data))
    second.start()
    assert second.wait_idle(5)
    second.close()
    assert got == [b"kept"]


def test_a_handler_slower_than_the_ack_deadline_gets_the_message_again(tmp_path: Path) -> None:
    settings = BUS_SETTINGS.model_copy(update={"ack_deadline_seconds": 0.2})
    bus = SqliteEventBus(tmp_path / "events.db", settings)
    deliveries: list[int] = []
    release = threading.Event()

    def slow(message: ReceivedMessage) -> None:
        deliveries.append(message.delivery_attempt)
        if message.delivery_attempt == 1:
            release.wait(2)

    bus.create_subscription("s", "topic")
    bus.subscribe("s", slow)
    bus.publish("topic", b"x")
    bus.start()
    deadline = time.monotonic() + 3
    while len(deliveries) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    bus.close()
    assert {1, 2} <= set(deliveries), deliveries  # workers race to start, so the order of the two may vary
