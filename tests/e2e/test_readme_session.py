"""The README's session, its shell block run as written, twice in a row, against `make run` on a fresh data dir."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import ROOT, RunningServer

pytestmark = pytest.mark.e2e


def readme_session() -> str:
    """The first shell block under the README's "A session" heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## A session\n") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "no bash block in the README's session"
    return block.group(1)


def paste(session: str, server: RunningServer) -> subprocess.CompletedProcess[str]:
    """Run the session in bash, stopping at the first failing command, as a newcomer's terminal in the checkout would."""
    env = {**os.environ, "PORT": str(server.port), "ONBOARDING_DATA_DIR": str(server.data_dir)}
    env.pop("ONBOARDING_OPERATOR_TOKEN", None)
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", session], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def answers(stdout: str) -> list[dict[str, Any]]:
    """Every JSON document the session printed, in order."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", position)) != -1:
        document, position = decoder.raw_decode(stdout, start)
        documents.append(document)
    return documents


def test_the_readme_session_runs_as_written_twice(tmp_path: Path) -> None:
    server = RunningServer(tmp_path / "data")
    try:
        server.wait_ready()
        session = readme_session()
        tenants = []
        for _ in range(2):
            run = paste(session, server)
            assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
            dry, onboarded, status, overview = answers(run.stdout)
            assert dry["status"] == "SUCCESS" and dry["ready_for_onboarding"] is True
            assert onboarded["status"] == "ACTIVE" and str(onboarded["api_key"]).startswith(f"{onboarded['tenant_id']}_api_")
            assert status["status"] == "ACTIVE" and {step["status"] for step in status["steps"]} == {"DONE"}
            assert overview["tenant_id"] == onboarded["tenant_id"] and overview["plan_name"] == "PROFESSIONAL"
            tenants.append(onboarded["tenant_id"])
        assert tenants[0] != tenants[1]
    finally:
        server.stop()
