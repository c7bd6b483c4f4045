"""Local Google Cloud: Firestore and Pub/Sub emulators, the BigQuery emulator and the test KMS server.

    python -m scripts.emulators check             # prerequisites present? (Java, the gcloud emulators)
    python -m scripts.emulators install           # .venv-bq with the pinned BigQuery emulator
    python -m scripts.emulators run -- CMD ...    # start all, run CMD with the variables set, stop all
    python -m scripts.emulators start             # start all, print `export` lines, stop on Ctrl-C

Every service listens on a free port; every process runs in its own process group so stopping
it stops its children too (the Pub/Sub launcher script starts a java child).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BQ_VENV = ROOT / ".venv-bq"
BQ_REQUIREMENTS = ROOT / "requirements-bq.txt"
SDK_PLATFORM = Path(os.environ.get("CLOUD_SDK_PLATFORM", "/usr/lib/google-cloud-sdk/platform"))
FIRESTORE_JAR = SDK_PLATFORM / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
PUBSUB_LAUNCHER = SDK_PLATFORM / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
PROJECT = "demo-project"
KMS_KEY = f"projects/{PROJECT}/locations/global/keyRings/onboarding/cryptoKeys/tenant-secrets"
FIRESTORE_MAIN = ("java", "-Duser.language=en", "-cp", str(FIRESTORE_JAR), "com.google.cloud.datastore.emulator.firestore.CloudFirestore")
BQ_OPTIONS = ("--grpc-host", "127.0.0.1", "--grpc-port", "0", "--project", PROJECT, "--ephemeral", "--log-level", "warning")
ENDPOINT_VARIABLES = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "BIGQUERY_API_ENDPOINT", "KMS_API_ENDPOINT")

_INSTALL_EXTENSIONS = """
import glob, importlib, os, duckdb
connection = duckdb.connect()
for module in ("duckdb_extension_spatial", "duckdb_extension_avro"):
    package = importlib.import_module(module)
    (path,) = glob.glob(os.path.join(os.path.dirname(package.__file__), "extensions", "v*", "*.duckdb_extension"))
    connection.execute(f"FORCE INSTALL '{path}'")
for name in ("spatial", "avro"):
    connection.execute(f"LOAD {name}")
"""


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the emulators (empty when all is there)."""
    problems = []
    if shutil.which("java") is None:
        problems.append("Java (17+) is not on PATH: install a JRE, e.g. apt-get install openjdk-17-jre-headless")
    if not FIRESTORE_JAR.is_file():
        problems.append(f"Firestore emulator missing at {FIRESTORE_JAR}: install google-cloud-cli-firestore-emulator")
    if not PUBSUB_LAUNCHER.is_file():
        problems.append(f"Pub/Sub emulator missing at {PUBSUB_LAUNCHER}: install google-cloud-cli-pubsub-emulator")
    return problems


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports nobody listens on right now.

    Every probe stays bound until all are chosen, so no two of them can be the same port.
    """
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    return free_ports(1)[0]


def bq_home() -> Path:
    """HOME of the BigQuery emulator: DuckDB finds the pre-installed extensions under it."""
    return BQ_VENV / "home"


def ensure_bq_venv(log: Path | None = None) -> Path:
    """Create .venv-bq from requirements-bq.txt and install the DuckDB extensions (once per lock file)."""
    digest = hashlib.sha1(BQ_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    stamp = BQ_VENV / f".installed-{digest}"
    python = BQ_VENV / "bin" / "python"
    if stamp.exists():
        return BQ_VENV / "bin" / "bqemulator"
    started = time.monotonic()
    print(f"installing the BigQuery emulator into {BQ_VENV.name} (once) ...", file=sys.stderr, flush=True)
    output = log.open("ab") if log else subprocess.DEVNULL
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(BQ_VENV)], check=True, stdout=output, stderr=subprocess.STDOUT)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(BQ_REQUIREMENTS)],
            check=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        bq_home().mkdir(parents=True, exist_ok=True)
        subprocess.run([str(python), "-c", _INSTALL_EXTENSIONS], check=True, env={**os.environ, "HOME": str(bq_home())})
    finally:
        if log:
            output.close()  # type: ignore[union-attr]
    for old in BQ_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    print(f"BigQuery emulator installed in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return BQ_VENV / "bin" / "bqemulator"


@dataclass
class Service:
    """One emulator process and how to tell it is ready."""

    name: str
    command: list[str]
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self, log_dir: Path) -> None:
        """Launch in its own process group, output to `log_dir/<name>.log`."""
        log = (log_dir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def ready(self) -> bool:
        """True once the readiness URL answers 200; raises if the process died."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode} before it was ready")
        try:
            return requests.get(self.ready_url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def terminate(self) -> None:
        """Ask the process group to stop without waiting (stop() waits)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        # The group may hold children (java under the launcher script) that outlive the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


class Emulators:
    """All four local services; `start()` returns the environment that points clients at them."""

    def __init__(self, log_dir: Path, kms_keys: tuple[str, ...] = (KMS_KEY,)) -> None:
        self.log_dir = log_dir
        self.kms_keys = kms_keys
        self.services: list[Service] = []
        self.env: dict[str, str] = {}
        self.start_seconds: dict[str, float] = {}

    def start(self, timeout: float = 120) -> dict[str, str]:
        """Start everything in parallel and wait until each answers; stops all on failure."""
        problems = missing_prerequisites()
        if problems:
            raise RuntimeError("; ".join(problems))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        bqemulator = ensure_bq_venv(self.log_dir / "bq-install.log")
        firestore, pubsub, bigquery, kms = free_ports(4)
        kms_command = [sys.executable, "-m", "tests.fakes.kms_server", "--port", str(kms)]
        for key in self.kms_keys:
            kms_command += ["--key", key]
        self.services = [
            Service(
                "firestore",
                [*FIRESTORE_MAIN, "start", "--host=127.0.0.1", f"--port={firestore}"],
                f"http://127.0.0.1:{firestore}/",
            ),
            Service("pubsub", [str(PUBSUB_LAUNCHER), "--host=127.0.0.1", f"--port={pubsub}"], f"http://127.0.0.1:{pubsub}/"),
            Service(
                "bigquery",
                [str(bqemulator), "start", "--rest-host", "127.0.0.1", "--rest-port", str(bigquery), *BQ_OPTIONS],
                f"http://127.0.0.1:{bigquery}/readyz",
                env={"HOME": str(bq_home())},
            ),
            Service("kms", kms_command, f"http://127.0.0.1:{kms}/healthz"),
        ]
        started = time.monotonic()
        try:
            for service in self.services:
                service.start(self.log_dir)
            waiting = list(self.services)
            while waiting:
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"not ready after {timeout:.0f} s: {', '.join(s.name for s in waiting)} (logs in {self.log_dir})")
                for service in [s for s in waiting if s.ready()]:
                    self.start_seconds[service.name] = time.monotonic() - started
                    waiting.remove(service)
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        self.start_seconds["all"] = time.monotonic() - started
        self.env = {
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{firestore}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub}",
            "BIGQUERY_API_ENDPOINT": f"http://127.0.0.1:{bigquery}",
            "KMS_API_ENDPOINT": f"http://127.0.0.1:{kms}",
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "ONBOARDING_KMS_KEY_NAME": self.kms_keys[0],
        }
        return self.env

    def describe_start(self) -> str:
        """Start times, for people and the README."""
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.start_seconds.items() if name != "all")
        return f"emulators ready in {self.start_seconds.get('all', 0):.1f} s ({parts})"

    def stop(self) -> None:
        """Stop every service this object started."""
        for service in self.services:
            service.terminate()
        for service in reversed(self.services):
            service.stop()


def main(argv: list[str]) -> int:
    """Command-line entry point (see the module docstring)."""
    command = argv[0] if argv else "start"
    if command == "check":
        problems = missing_prerequisites()
        for problem in problems:
            print(f"missing: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if command == "install":
        ensure_bq_venv()
        return 0
    if command not in {"run", "start"}:
        print(__doc__, file=sys.stderr)
        return 2
    emulators = Emulators(ROOT / ".data" / "emulators")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        env = emulators.start()
        print(emulators.describe_start(), file=sys.stderr, flush=True)
        if command == "run":
            rest = argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]
            return subprocess.run(rest, env={**os.environ, **env}, check=False).returncode
        for name, value in env.items():
            print(f"export {name}={value}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        emulators.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
