"""The deployed topology on one machine: `make emulate`.

Emulators (Firestore, Pub/Sub, BigQuery, the test KMS), the central tables, every topic with
its dead-letter topic, and every function as its own functions-framework process. Each step
topic has a push subscription to its step function (dead-letter policy, retry policy) whose
URL path names the topic, so functions-framework builds the CloudEvent Eventarc would
(`google.cloud.pubsub.topic.v1.messagePublished`, source `//pubsub.googleapis.com/projects/P/topics/T`).

The HTTP functions listen on their own ports; a small front on one port routes the API
paths to them, as the load balancer or API gateway does in front of Cloud Functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from functions.api import ROUTES
from functions.topology import event_triggers
from scripts.emulators import ROOT, Emulators, Service, free_port, free_ports
from shared.bootstrap import load_settings
from shared.handlers.dead_letters import dead_letter_topic

HTTP_FUNCTIONS = tuple(ROUTES)
MAX_DELIVERY_ATTEMPTS = 5
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


def front_app(targets: dict[str, str]) -> Any:
    """A WSGI app forwarding each API route to the URL of the function that serves it."""
    rules = Map([Rule(path, methods=[method], endpoint=name) for name, routes in ROUTES.items() for method, path, _ in routes])

    @Request.application  # type: ignore[untyped-decorator]
    def app(request: Request) -> Response:
        try:
            function, _ = rules.bind_to_environ(request.environ).match()
        except HTTPException as error:
            code = "ROUTE_NOT_FOUND" if error.code == 404 else "METHOD_NOT_ALLOWED"
            return Response(
                f'{{"error": {{"code": "{code}", "message": "no function serves {request.method} {request.path}", "field": null}}}}',
                status=error.code or 404,
                mimetype="application/json",
            )
        query = request.query_string.decode()
        upstream = requests.request(
            request.method,
            f"{targets[function]}{request.path}" + (f"?{query}" if query else ""),
            headers={key: value for key, value in request.headers.items() if key.lower() not in _HOP_HEADERS},
            data=request.get_data(),
            timeout=120,
            allow_redirects=False,
        )
        headers = [(key, value) for key, value in upstream.headers.items() if key.lower() not in _HOP_HEADERS]
        return Response(upstream.content, status=upstream.status_code, headers=headers)

    return app


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class FunctionProcess(Service):
    """One function served by functions-framework, ready once its port accepts connections."""

    def __init__(self, target: str, port: int, env: dict[str, str]) -> None:
        framework = str(Path(sys.executable).with_name("functions-framework"))
        command = [framework, "--target", target, "--source", "main.py", "--host", "127.0.0.1", "--port", str(port)]
        super().__init__(target, command, f"http://127.0.0.1:{port}", env=env)
        self.port = port

    def ready(self) -> bool:
        """True once the port accepts connections; raises if the process died."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"function {self.name} exited with {self.process.returncode}")
        return _listening(self.port)


class Topology:
    """Topics, subscriptions, one process per function and the front, on running emulators."""

    def __init__(self, emulator_env: dict[str, str], log_dir: Path, front_port: int = 0, max_backoff_seconds: int = 10) -> None:
        self.emulator_env = emulator_env
        self.max_backoff_seconds = max_backoff_seconds
        self.log_dir = log_dir
        self.front_port = front_port or free_port()
        self.url = f"http://127.0.0.1:{self.front_port}"
        self.env = {**emulator_env, "ONBOARDING_BACKEND": "gcp", "ONBOARDING_ENV": "development"}
        self.env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}  # function logs reach their files as written
        self.settings = load_settings({**os.environ, **self.env})
        self.project = self.settings.gcp.project
        self.functions: list[FunctionProcess] = []
        self._front: BaseWSGIServer | None = None
        self.start_seconds = 0.0

    def start(self, timeout: float = 120) -> str:
        """Bring everything up; returns the front URL."""
        started = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        triggers = event_triggers()
        event_functions = {t.function for t in triggers} | {t.dead_letter_function for t in triggers if t.dead_letter_function}
        names = [*HTTP_FUNCTIONS, *sorted(event_functions)]
        ports = dict(zip(names, [port for port in free_ports(len(names) + 1) if port != self.front_port], strict=False))
        self.functions = [FunctionProcess(name, port, self.env) for name, port in ports.items()]
        try:
            for function in self.functions:
                function.start(self.log_dir)
            self._bootstrap()
            self._create_topics_and_subscriptions(ports)
            deadline = time.monotonic() + timeout
            for function in self.functions:
                while not function.ready():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"function {function.name} not listening after {timeout:.0f} s (logs in {self.log_dir})")
                    time.sleep(0.1)
            targets = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            self._front = make_server("127.0.0.1", self.front_port, front_app(targets), threaded=True)
            threading.Thread(target=self._front.serve_forever, name="front", daemon=True).start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self.url

    def _bootstrap(self) -> None:
        """The central dataset and tables, by the project's own bootstrap command."""
        subprocess.run(
            [sys.executable, "-m", "shared.bootstrap"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=(self.log_dir / "bootstrap.log").open("ab"),
        )

    def _create_topics_and_subscriptions(self, ports: dict[str, int]) -> None:
        from google.api_core import exceptions as google_errors
        from google.cloud import pubsub  # type: ignore[attr-defined]
        from google.protobuf import duration_pb2

        saved = {name: os.environ.get(name) for name in self.emulator_env}
        os.environ.update(self.emulator_env)
        try:
            publisher, subscriber = pubsub.PublisherClient(), pubsub.SubscriberClient()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

        def topic_path(topic: str) -> str:
            return str(publisher.topic_path(self.project, topic))

        def push_url(function: str, topic: str) -> str:
            return f"http://127.0.0.1:{ports[function]}/projects/{self.project}/topics/{topic}"

        def ensure(call: Any, **request: Any) -> None:
            with contextlib.suppress(google_errors.AlreadyExists):
                call(request=request)

        topics = self.settings.topics
        for topic in topics.names():
            ensure(publisher.create_topic, name=topic_path(topic))
        retry = pubsub.types.RetryPolicy(
            minimum_backoff=duration_pb2.Duration(seconds=1), maximum_backoff=duration_pb2.Duration(seconds=self.max_backoff_seconds)
        )

        def push_subscription(topic: str, function: str, **policy: Any) -> None:
            ensure(
                subscriber.create_subscription,
                name=subscriber.subscription_path(self.project, f"{topic}-push"),
                topic=topic_path(topic),
                push_config={"push_endpoint": push_url(function, topic)},
                ack_deadline_seconds=60,
                retry_policy=retry,
                **policy,
            )

        for trigger in event_triggers():
            topic = trigger.topic(topics)
            if not trigger.dead_letter_function:
                push_subscription(topic, trigger.function)
                continue
            dead_letters = dead_letter_topic(topic)
            ensure(publisher.create_topic, name=topic_path(dead_letters))
            push_subscription(dead_letters, trigger.dead_letter_function)
            policy = {"dead_letter_topic": topic_path(dead_letters), "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS}
            push_subscription(topic, trigger.function, dead_letter_policy=policy)
        publisher.stop()
        subscriber.close()

    def stop(self) -> None:
        """Stop the front and every function process."""
        if self._front is not None:
            self._front.shutdown()
            self._front.server_close()
            self._front = None
        for function in self.functions:
            function.terminate()
        for function in self.functions:
            function.stop()

    def describe(self) -> Iterable[str]:
        """Where everything listens."""
        yield f"front (API): {self.url}"
        for function in self.functions:
            yield f"  {function.name}: http://127.0.0.1:{function.port}"


def main() -> int:
    """Start emulators and topology, print where they are, stop everything on Ctrl-C."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    log_dir = ROOT / ".data" / "emulate"
    emulators = Emulators(log_dir / "emulators")
    topology: Topology | None = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        env = emulators.start()
        print(emulators.describe_start(), flush=True)
        topology = Topology(env, log_dir, int(os.environ.get("PORT", "8080")))
        topology.start()
        print(f"topology ready in {topology.start_seconds:.1f} s", flush=True)
        for line in topology.describe():
            print(line, flush=True)
        for name, value in env.items():
            print(f"export {name}={value}", flush=True)
        print("Ctrl-C stops everything", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        if topology is not None:
            topology.stop()
        emulators.stop()


if __name__ == "__main__":
    sys.exit(main())
