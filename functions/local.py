"""Local platform: every HTTP function on one port, every event function on the embedded bus.

`python -m functions.local` (what `make run` does) bootstraps the central tables, wires the
step functions as push subscribers of the embedded bus, relays the step commands a crash left
in the outbox, sweeps expired records periodically, runs the local pipeline executor (unless
ONBOARDING_LOCAL_EXECUTOR=false), and serves http://127.0.0.1:$PORT.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
from cloudevents.http import CloudEvent
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from functions.local_executor import LocalExecutor
from functions.routes import ALL_ROUTES
from functions.topology import entry_point, event_triggers
from shared.adapters.embedded.sqlite_event_bus import Handler, ReceivedMessage, SqliteEventBus
from shared.adapters.guarded import unwrap
from shared.bootstrap import build_services
from shared.entrypoints.events import PUBSUB_MESSAGE_PUBLISHED
from shared.entrypoints.http import http_error
from shared.entrypoints.runtime import install_services
from shared.handlers.dead_letters import dead_letter_topic
from shared.handlers.reconcile import reconcile
from shared.handlers.sweep import sweep_expired
from shared.handlers.warehouse_setup import bootstrap_warehouse
from shared.logging_setup import configure_logging
from shared.services import Services

logger = logging.getLogger(__name__)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
LOCAL_PROJECT = "local-project"


def create_app() -> flask.Flask:
    """One Flask app that routes every path to the HTTP function that owns it."""
    app = flask.Flask("onboarding")
    app.url_map.merge_slashes = False  # a redirect would answer before the router, and not in JSON

    @app.route("/", defaults={"path": ""}, methods=_METHODS)
    @app.route("/<path:path>", methods=_METHODS)
    def dispatch(path: str) -> flask.Response:
        return ALL_ROUTES.dispatch(flask.request)

    app.register_error_handler(HTTPException, http_error)
    return app


def as_cloud_event(message: ReceivedMessage) -> CloudEvent:
    """The CloudEvent Eventarc would deliver for this Pub/Sub message."""
    published = datetime.fromtimestamp(message.publish_time, UTC).isoformat().replace("+00:00", "Z")
    attributes = {
        "type": PUBSUB_MESSAGE_PUBLISHED,
        "source": f"//pubsub.googleapis.com/projects/{LOCAL_PROJECT}/topics/{message.topic}",
        "id": message.message_id,
        "time": published,
        "specversion": "1.0",
        "datacontenttype": "application/json",
    }
    data = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": message.attributes,
            "messageId": message.message_id,
            "publishTime": published,
            "deliveryAttempt": message.delivery_attempt,
        },
        "subscription": f"projects/{LOCAL_PROJECT}/subscriptions/{message.subscription}",
    }
    return CloudEvent(attributes, data)


def push_to(function: Callable[[CloudEvent], Any]) -> Handler:
    """A bus handler that delivers each message to `function` as a CloudEvent."""

    def deliver(message: ReceivedMessage) -> None:
        function(as_cloud_event(message))

    return deliver


def wire_event_functions(services: Services, bus: SqliteEventBus, only: Collection[str] | None = None) -> None:
    """Subscribe every event function (or those named in `only`) and its dead-letter function to its topic."""

    def subscribe(name: str, handler: Handler) -> None:
        bus.subscribe(name, handler if services.guard is None else services.guard.push_handler(name, handler))

    for trigger in event_triggers():
        if only is not None and trigger.function not in only:
            continue
        topic = trigger.topic(services.settings.topics)
        dead_letters = dead_letter_topic(topic) if trigger.dead_letter_function else None
        bus.create_subscription(f"{topic}-push", topic, dead_letters)
        subscribe(f"{topic}-push", push_to(entry_point(trigger.function)))
        if dead_letters and trigger.dead_letter_function:
            bus.create_subscription(f"{dead_letters}-push", dead_letters)
            subscribe(f"{dead_letters}-push", push_to(entry_point(trigger.dead_letter_function)))


class LocalPlatform:
    """The embedded stack in one process: services, bus workers, reconciler, HTTP app."""

    def __init__(self, services: Services, reconcile_every: float = 30.0) -> None:
        bus = unwrap(services.bus)
        if not isinstance(bus, SqliteEventBus):
            raise RuntimeError("the local platform runs on the embedded event bus")
        self.services = services
        self.bus: SqliteEventBus = bus
        self.app = create_app()
        self._reconcile_every = reconcile_every
        self._stopping = threading.Event()
        self._reconciler: threading.Thread | None = None
        self._sweeper: threading.Thread | None = None
        self.executor = LocalExecutor(services, bus) if services.settings.pipeline_runs.local_executor else None

    def start(self) -> None:
        """Bootstrap tables, wire subscribers, relay what the outbox still holds, start workers and the sweeper."""
        install_services(self.services)
        bootstrap_warehouse(self.services)
        wire_event_functions(self.services, self.bus)
        if self.executor is not None:
            self.executor.wire()
            self.executor.start()
        reconcile(self.services, stale_after=timedelta(0))
        self.bus.start()
        self._reconciler = threading.Thread(target=self._reconcile_loop, name="reconciler", daemon=True)
        self._reconciler.start()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="sweeper", daemon=True)
        self._sweeper.start()

    def _sweep_loop(self) -> None:
        """What Cloud Scheduler and sweep_expired_records do on Google Cloud (besides Firestore's TTL policies)."""
        while not self._stopping.wait(self.services.settings.lifetimes.sweep_every_seconds):
            try:
                sweep_expired(self.services)
            except Exception:
                logger.exception("sweep failed")

    def _reconcile_loop(self) -> None:
        stale_after = timedelta(seconds=max(self._reconcile_every, self.services.settings.event_bus.ack_deadline_seconds * 2))
        while not self._stopping.wait(self._reconcile_every):
            try:
                reconcile(self.services, stale_after)
            except Exception:
                logger.exception("reconciler pass failed")

    def stop(self) -> None:
        """Stop workers and close the backends."""
        self._stopping.set()
        if self.executor is not None:
            self.executor.stop()
        for thread in (self._reconciler, self._sweeper):
            if thread is not None:
                thread.join(10)
        self.bus.stop()
        install_services(None)
        self.services.close()


def main() -> None:
    """Serve the whole API on one port with the embedded backends."""
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    platform = LocalPlatform(build_services())
    platform.start()
    port = int(os.environ.get("PORT", "8080"))
    host = os.environ.get("HOST", "127.0.0.1")
    server = make_server(host, port, platform.app, threaded=True)
    stop = threading.Event()

    def shutdown(signum: int, frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    logger.info("serving", extra={"url": f"http://{host}:{port}", "data_dir": str(platform.services.settings.data_dir)})
    started = time.monotonic()
    server.serve_forever()
    platform.stop()
    logger.info("stopped", extra={"uptime_seconds": round(time.monotonic() - started, 1)})


if __name__ == "__main__":
    main()
