"""Record what a Pub/Sub push delivers, for the functional tests in tests/data/.

    python -m scripts.record_pubsub_events

Publishes one step command with our PubSubEventBus on the Pub/Sub emulator to a push
subscription whose endpoint is a capture server, saves the push exactly as received, and
saves the two CloudEvent forms Eventarc delivers for that same message: binary (ce-* headers,
the push body as data) and structured (application/cloudevents+json).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from schemas.events import StepRequested
from scripts.emulators import PROJECT, ROOT, Emulators
from shared.entrypoints.events import PUBSUB_MESSAGE_PUBLISHED

OUT = ROOT / "tests" / "data"
TOPIC = "onboarding-quota"


def record(log_dir: Path) -> dict[str, Any]:
    """The captured push: path, headers and JSON body."""
    import os

    captured: list[dict[str, Any]] = []
    arrived = threading.Event()

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            captured.append({"path": self.path, "headers": {"Content-Type": self.headers.get("Content-Type")}, "body": body})
            self.send_response(204)
            self.end_headers()
            arrived.set()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emulators = Emulators(log_dir)
    try:
        os.environ.update(emulators.start())
        from google.cloud import pubsub  # type: ignore[attr-defined]

        from shared.adapters.gcp.pubsub_event_bus import PubSubEventBus
        from shared.handlers.publishing import publish_event

        publisher, subscriber = pubsub.PublisherClient(), pubsub.SubscriberClient()
        topic = publisher.topic_path(PROJECT, TOPIC)
        publisher.create_topic(name=topic)
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/projects/{PROJECT}/topics/{TOPIC}"
        subscription = subscriber.subscription_path(PROJECT, f"{TOPIC}-push")
        subscriber.create_subscription(name=subscription, topic=topic, push_config={"push_endpoint": endpoint})
        command = StepRequested(
            event_id="customer_123.quota.1", tenant_id="customer_123", step="quota", generation=1, occurred_at="2026-01-01T00:00:00.000Z"
        )
        bus = PubSubEventBus(publisher, PROJECT)
        # publish_event only needs the bus of Services.
        publish_event(SimpleNamespace(bus=bus), TOPIC, command, tenant_id="customer_123")  # type: ignore[arg-type]
        if not arrived.wait(30):
            raise RuntimeError("no push arrived within 30 s")
        bus.close()
        subscriber.close()
    finally:
        emulators.stop()
        server.shutdown()
    return captured[0]


def main() -> None:
    """Write the three recordings."""
    push = record(ROOT / ".data" / "record-events")
    message = push["body"]["message"]
    source = f"//pubsub.googleapis.com/projects/{PROJECT}/topics/{TOPIC}"
    binary = {
        "headers": {
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": message["messageId"],
            "ce-source": source,
            "ce-type": PUBSUB_MESSAGE_PUBLISHED,
            "ce-time": message["publishTime"],
        },
        "body": push["body"],
    }
    structured = {
        "headers": {"Content-Type": "application/cloudevents+json"},
        "body": {
            "specversion": "1.0",
            "id": message["messageId"],
            "source": source,
            "type": PUBSUB_MESSAGE_PUBLISHED,
            "time": message["publishTime"],
            "datacontenttype": "application/json",
            "data": push["body"],
        },
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, recording in {"pubsub_push_emulator": push, "cloudevent_binary": binary, "cloudevent_structured": structured}.items():
        (OUT / f"{name}.json").write_text(json.dumps(recording, indent=2, sort_keys=True) + "\n")
        print(f"wrote tests/data/{name}.json")


if __name__ == "__main__":
    main()
