"""Onboarding time on the emulated Google topology next to the embedded platform.

    python -m scripts.bench_emulated --tenants 5

Both are driven the same way over HTTP: dry run, onboard (202), then poll the status
function until ACTIVE. The emulated figure includes Pub/Sub push hops between function
processes and the emulators' own costs; it is not a prediction of Cloud latency.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

from functions.local import LocalPlatform
from scripts.bench import percentile, request_body
from scripts.emulate import Topology
from scripts.emulators import Emulators
from shared.bootstrap import build_embedded_services, load_settings


def onboarding_times(url: str, tenants: int, prefix: str) -> tuple[list[float], list[float]]:
    """(dry-run ms, accepted -> ACTIVE ms) for `tenants` onboardings through `url`."""
    session = requests.Session()
    api = f"{url}/api/v1/tenants"
    dryrun_ms, onboarding_ms = [], []
    for index in range(tenants):
        body = request_body(f"{prefix}_{index}")
        started = time.perf_counter()
        dry = session.post(f"{api}/dryrun", json=body, timeout=60)
        dryrun_ms.append((time.perf_counter() - started) * 1000)
        assert dry.status_code == 200 and dry.json()["ready_for_onboarding"], dry.text
        started = time.perf_counter()
        response = session.post(f"{api}/onboard", json=body, timeout=60)
        assert response.status_code == 202, response.text
        deadline = started + 120
        while True:
            status = session.get(f"{api}/{body['tenant_id']}", timeout=30).json().get("status")
            if status != "PROVISIONING" or time.perf_counter() > deadline:
                break
            time.sleep(0.02)
        assert status == "ACTIVE", status
        onboarding_ms.append((time.perf_counter() - started) * 1000)
    return dryrun_ms, onboarding_ms


def embedded(tmp: Path, tenants: int) -> tuple[list[float], list[float]]:
    """The same session on `make run`'s platform."""
    platform = LocalPlatform(build_embedded_services(load_settings({"ONBOARDING_DATA_DIR": str(tmp)})), reconcile_every=3600)
    platform.start()
    server = make_server("127.0.0.1", 0, platform.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        onboarding_times(f"http://127.0.0.1:{server.server_port}", 1, "warm_up")
        return onboarding_times(f"http://127.0.0.1:{server.server_port}", tenants, "bench")
    finally:
        server.shutdown()
        platform.stop()


def emulated(tmp: Path, tenants: int) -> tuple[list[float], list[float]]:
    """The same session on `make emulate`'s topology; prints start times."""
    emulators = Emulators(tmp / "emulators")
    topology: Topology | None = None
    try:
        env = emulators.start()
        print(emulators.describe_start())
        topology = Topology(env, tmp / "topology")
        topology.start()
        functions = len(topology.functions)
        print(f"topology (bootstrap, topics, subscriptions, {functions} function processes) ready in {topology.start_seconds:.1f} s")
        onboarding_times(topology.url, 1, "warm_up")
        return onboarding_times(topology.url, tenants, "bench")
    finally:
        if topology is not None:
            topology.stop()
        emulators.stop()


def main() -> None:
    """Print both figures."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {"embedded (make run)": embedded(Path(tmp) / "embedded", args.tenants)}
        results["emulated GCP (make emulate)"] = emulated(Path(tmp) / "emulated", args.tenants)
    for name, (dry, onboarding) in results.items():
        print(
            f"{name}: dry run p50 {percentile(dry, 0.5):.0f} ms; onboarding accepted -> ACTIVE over {len(onboarding)} tenants "
            f"p50 {percentile(onboarding, 0.5):.0f} ms, max {max(onboarding):.0f} ms"
        )


if __name__ == "__main__":
    main()
