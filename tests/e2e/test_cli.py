"""The `onboarding` CLI against the real server (`make run`): live progress, tables, --json, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from cli.main import app
from scripts.emulators import free_port
from tests.e2e.server import ROOT, RunningServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path_factory.mktemp("cli") / "data")
    running.wait_ready()
    yield running
    running.stop()


def run(server: RunningServer, *args: str) -> Any:
    """`onboarding --url URL --data-dir DIR ARGS...`: the operator token is the one the server generated there."""
    return CliRunner().invoke(app, ["--url", server.url, "--data-dir", str(server.data_dir), *args])


def _onboard_args(tenant_id: str, email: str = "ops@example.com") -> list[str]:
    return ["tenants", "onboard", "--tenant-id", tenant_id, "--company", "Example Ltd", "--email", email, "--plan", "STARTER"]


def test_onboard_shows_each_step_until_active_and_prints_the_key_once(server: RunningServer) -> None:
    result = run(server, *_onboard_args("cli_live"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "cli_live: dry run passed, provisioning"
    progress = [line.split() for line in lines[1:] if line.startswith("  ")]
    for step in ("subscription", "quota", "dataset", "view"):
        seen = [status for name, status in progress if name == step]
        assert seen and seen[-1] == "DONE", (step, progress)
    view_done = progress.index(["view", "DONE"])
    assert all(progress.index([step, "DONE"]) < view_done for step in ("subscription", "quota", "dataset")), "the view step comes last"
    assert "cli_live is ACTIVE" in lines
    key_lines = [line for line in lines if "cli_live_api_" in line]
    assert len(key_lines) == 1 and key_lines[0].startswith("API key (shown this once")
    api_key = key_lines[0].rsplit(" ", 1)[1]
    overview = requests.get(f"{server.url}/api/v1/tenants/cli_live/overview", headers={"X-API-Key": api_key}, timeout=10)
    assert overview.status_code == 200 and overview.json()["tenant_status"] == "ACTIVE"


def test_a_failed_dry_run_prints_the_checks_as_a_table_and_exits_1(server: RunningServer) -> None:
    result = run(server, *_onboard_args("cli_bad_email", email="not-an-address"))
    assert result.exit_code == 1
    assert "dry run of cli_bad_email: 8/9 checks passed" in result.stdout
    failed = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert len(failed) == 1 and "email_format" in failed[0]
    status = run(server, "tenants", "status", "cli_bad_email")
    assert status.exit_code == 1 and status.stderr == "error: 404 TENANT_NOT_FOUND: no tenant 'cli_bad_email' (field tenant_id)\n"


def test_json_and_key_only_give_scripts_what_they_need(server: RunningServer) -> None:
    onboarded = run(server, *_onboard_args("cli_json"), "--json")
    assert onboarded.exit_code == 0, onboarded.output
    body = json.loads(onboarded.stdout)
    assert (body["tenant_id"], body["status"]) == ("cli_json", "ACTIVE") and body["api_key"].startswith("cli_json_api_")
    assert {step["status"] for step in body["steps"]} == {"DONE"}

    listed = json.loads(run(server, "tenants", "list", "--status", "ACTIVE", "--plan", "STARTER", "--json").stdout)
    assert "cli_json" in [tenant["tenant_id"] for tenant in listed["tenants"]]

    key_only = run(server, *_onboard_args("cli_key_only"), "--key-only")
    assert key_only.exit_code == 0, key_only.output
    assert key_only.stdout.strip().startswith("cli_key_only_api_") and len(key_only.stdout.splitlines()) == 1
    assert "view" in key_only.stderr, "progress goes to stderr when stdout carries the key"

    again = run(server, *_onboard_args("cli_json"), "--json")
    assert again.exit_code == 1
    existence = next(check for check in json.loads(again.stdout)["dry_run"]["checks"] if check["name"] == "tenant_existence")
    assert existence["passed"] is False and "already exists" in existence["detail"]


def test_operator_actions_and_the_audit_trail(server: RunningServer) -> None:
    assert run(server, *_onboard_args("cli_admin"), "--json").exit_code == 0
    suspended = run(server, "tenants", "suspend", "cli_admin", "--reason", "abuse report")
    assert suspended.exit_code == 0 and suspended.stdout.startswith("cli_admin: ACTIVE -> SUSPENDED")
    rotated = json.loads(run(server, "tenants", "rotate-key", "cli_admin", "--reason", "leaked", "--grace-hours", "0", "--json").stdout)
    assert rotated["grace_hours"] == 0 and rotated["api_key"].startswith("cli_admin_api_")
    assert run(server, "tenants", "resume", "cli_admin", "--reason", "resolved").exit_code == 0
    published = run(server, "billing", "publish", "--tenant-id", "cli_admin", "--type", "plan_changed", "--new-plan", "SCALE")
    assert published.exit_code == 0, published.output
    offboarded = run(server, "tenants", "offboard", "cli_admin", "--reason", "contract ended")
    assert offboarded.exit_code == 0 and "-> OFFBOARDED" in offboarded.stdout
    refused = run(server, "tenants", "resume", "cli_admin", "--reason", "oops")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: 409 TRANSITION_NOT_ALLOWED: ") and refused.stderr.count("\n") == 1
    trail = json.loads(run(server, "tenants", "events", "cli_admin", "--json").stdout)["events"]
    operator_entries = [(e["type"], e["reason"]) for e in trail if e["source"] == "operator"]
    assert operator_entries[:3] == [("payment_failed", "abuse report"), ("api_key_rotated", "leaked"), ("payment_recovered", "resolved")]
    assert ("subscription_cancelled", "contract ended") in operator_entries
    assert any(e["type"] == "plan_changed" and e["source"] == "onboarding-cli" for e in trail)
    assert run(server, "dead-letters", "list", "--json").exit_code == 0


def test_errors_are_one_line_on_stderr_never_a_traceback(server: RunningServer, tmp_path: Path) -> None:
    nobody = CliRunner().invoke(app, ["--url", f"http://127.0.0.1:{free_port()}", "--token", "t" * 20, "tenants", "list"])
    assert nobody.exit_code == 1
    assert nobody.stderr.startswith("error: cannot reach http://127.0.0.1:") and nobody.stderr.count("\n") == 1
    wrong_token = CliRunner().invoke(app, ["--url", server.url, "--token", "not-the-operator-token", "tenants", "list"])
    assert wrong_token.exit_code == 1 and wrong_token.stderr.startswith("error: 401 UNAUTHORIZED: ")
    no_token = CliRunner().invoke(
        app, ["--url", server.url, "--auth", "token", "--data-dir", str(tmp_path), "tenants", "list"], env={"ONBOARDING_OPERATOR_TOKEN": ""}
    )
    assert no_token.exit_code == 1 and no_token.stderr.startswith("error: no operator token: ")
    bad_filter = run(server, "tenants", "list", "--status", "GONE")
    assert bad_filter.exit_code == 1 and bad_filter.stderr.startswith("error: 422 INVALID_REQUEST: status must be one of")
    assert bad_filter.stderr.rstrip().endswith("(field status)")
    for result in (nobody, wrong_token, no_token, bad_filter):
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def _documented_session() -> str:
    """The shell block under "## A session" in docs/cli.md, exactly as a reader pastes it."""
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("## A session", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_documented_session_runs_twice_in_a_row(server: RunningServer) -> None:
    env = {**os.environ, "ONBOARDING_URL": server.url, "ONBOARDING_DATA_DIR": str(server.data_dir)}
    env.pop("ONBOARDING_OPERATOR_TOKEN", None)
    session = _documented_session()
    for _ in range(2):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", session], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "old key: 200" in done.stdout and "old key: 401, new key: 200" in done.stdout, done.stdout
        assert '"tenant_status":"ACTIVE"' in done.stdout.replace(" ", "")
        assert "-> OFFBOARDED" in done.stdout
        assert "Traceback" not in done.stderr


def test_a_step_that_fails_for_good_ends_the_onboarding_with_exit_1_and_its_error(tmp_path: Path) -> None:
    env = {
        "ONBOARDING_FAULTS": "outage=warehouse.append_rows",  # the analytics copy of the steps that write it
        "ONBOARDING_BUS_MAX_ATTEMPTS": "2",
        "ONBOARDING_BUS_MIN_BACKOFF_SECONDS": "0.01",
        "ONBOARDING_BUS_MAX_BACKOFF_SECONDS": "0.05",
        "ONBOARDING_CALL_ATTEMPTS": "1",
    }
    failing = RunningServer(tmp_path / "data", extra_env=env)
    try:
        failing.wait_ready()
        result = run(failing, *_onboard_args("cli_fails"), "--timeout", "120")
        assert result.exit_code == 1, result.output
        assert "cli_fails is FAILED" in result.stdout and "cli_fails_api_" in result.stdout, "the key is still shown once"
        assert result.stderr.startswith("error: tenant 'cli_fails' is FAILED: step ") and result.stderr.count("\n") == 1
        assert "injected outage of warehouse" in result.stderr
        status = json.loads(run(failing, "tenants", "status", "cli_fails", "--json").stdout)
        failed_steps = sorted(step["name"] for step in status["steps"] if step["status"] == "FAILED")
        letters = json.loads(run(failing, "dead-letters", "list", "--tenant-id", "cli_fails", "--json").stdout)["dead_letters"]
        assert failed_steps and failed_steps == sorted(letter["step"] for letter in letters)
        retried = run(failing, "tenants", "retry", "cli_fails", "--no-follow")
        assert retried.exit_code == 0 and retried.stdout.startswith("cli_fails: retrying ")
        assert sorted(retried.stdout.strip().removeprefix("cli_fails: retrying ").split(", ")) == failed_steps
    finally:
        failing.stop()
