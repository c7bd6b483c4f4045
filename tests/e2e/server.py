"""Start the real server the way the README does (`make run`), on a free port and a fresh data dir.

The server generates its operator token into the data dir at first start, as it does for a
user; `session` calls as that operator.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from scripts.emulators import free_port
from shared.adapters.local_operator_authenticator import TOKEN_FILE

ROOT = Path(__file__).resolve().parents[2]


class RunningServer:
    """`make run` as a child process group; `stop()` or `kill()` ends it."""

    def __init__(self, data_dir: Path, port: int | None = None, extra_env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, "PORT": str(self.port), "ONBOARDING_DATA_DIR": str(data_dir), **(extra_env or {})}
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def operator_token(self) -> str:
        """The operator token the server uses (generated into its data dir, unless given in the environment)."""
        return (self.data_dir / TOKEN_FILE).read_text().strip()

    @property
    def session(self) -> requests.Session:
        """A session that sends the operator's bearer token on every request."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.operator_token}"
        return session

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until /healthz answered; raises with the server log if it never did."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or too busy starting to answer within the second
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM the group and wait."""
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the group: no clean-up runs."""
        self._signal(signal.SIGKILL)
        self.process.wait(15)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
