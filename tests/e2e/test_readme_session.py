"""The README's session, its shell block run as written, twice in a row, against `make run` on a fresh data dir."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

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
    """Run the session in bash from the checkout, stopping at the first failing command.

    The server is `make run` on its own port and data dir, which the session (through the CLI's
    ONBOARDING_URL and ONBOARDING_DATA_DIR) finds as it finds `make run`'s defaults.
    """
    env = {**os.environ, "ONBOARDING_URL": server.url, "ONBOARDING_DATA_DIR": str(server.data_dir), "COLUMNS": "200"}
    env.pop("ONBOARDING_OPERATOR_TOKEN", None)
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", session], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_the_readme_session_runs_as_written_twice(tmp_path: Path) -> None:
    server = RunningServer(tmp_path / "data")
    try:
        server.wait_ready()
        session = readme_session()
        tenants = []
        for _ in range(2):
            run = paste(session, server)
            assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
            [tenant] = re.findall(r"^dry run of (\w+): 9/9 checks passed", run.stdout, flags=re.MULTILINE)
            assert f"{tenant}: dry run passed, provisioning" in run.stderr
            assert re.search(rf"^{tenant}: ACTIVE \(PROFESSIONAL\)", run.stdout, flags=re.MULTILINE), run.stdout
            answers = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"schema_version"')]
            [overview] = [answer for answer in answers if "tenant_status" in answer]
            assert (overview["tenant_id"], overview["tenant_status"], overview["plan_name"]) == (tenant, "ACTIVE", "PROFESSIONAL")
            [admitted] = [answer for answer in answers if "pipeline_logging_id" in answer]
            assert (admitted["pipeline_id"], admitted["status"]) == ("gcp/sales/daily_load", "PENDING")
            assert admitted["quota"]["daily"] == {"used": 1, "limit": 25}, "the platform's validation run is not charged"
            assert f"{tenant}: ACTIVE -> SUSPENDED" in run.stdout and f"{tenant}: SUSPENDED -> ACTIVE" in run.stdout
            assert "old key: 401\nnew key: 200\n" in run.stdout
            assert "payment dispute" in run.stdout and "dispute settled" in run.stdout, "the audit trail shows the reasons"
            assert "_api_" not in run.stdout + run.stderr, "the API keys stay in their shell variables"
            tenants.append(tenant)
        assert tenants[0] != tenants[1]
        assert "2 tenant(s)" in run.stdout, "the second paste lists both tenants"
    finally:
        server.stop()
