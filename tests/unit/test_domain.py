"""Pure domain rules: identifiers, keys, plans, state transitions, config."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.bootstrap import load_settings, read_dryrun_config, read_plans
from shared.domain import tenant as transitions
from shared.domain.api_keys import KEY_PATTERN, generate_api_key, hash_api_key
from shared.domain.dryrun_config import DryRunConfig
from shared.domain.identifiers import tenant_id_problem
from shared.domain.tenant import TenantState, initial_steps


@pytest.mark.parametrize("tenant_id", ["abc", "customer_123", "A" * 50, "Tenant_9"])
def test_good_tenant_ids(tenant_id: str) -> None:
    assert tenant_id_problem(tenant_id) is None


def test_api_keys_have_the_documented_shape_and_are_unique() -> None:
    keys = {generate_api_key("customer_123") for _ in range(200)}
    assert len(keys) == 200
    assert all(KEY_PATTERN.fullmatch(key) for key in keys)
    assert len(hash_api_key(next(iter(keys)))) == 64


def test_plans_match_the_published_limits() -> None:
    plans = read_plans()
    limits = {name: (p.daily_pipeline_limit, p.monthly_pipeline_limit, p.concurrent_pipeline_limit) for name, p in plans.plans.items()}
    assert limits == {"STARTER": (6, 180, 3), "PROFESSIONAL": (25, 750, 5), "SCALE": (100, 3000, 10)}


def _state() -> TenantState:
    return TenantState(
        tenant_id="t1",
        company_name="c",
        admin_email="a@b.co",
        subscription_plan="STARTER",
        status="PROVISIONING",
        steps=initial_steps(),
        api_key_hash="h",
        request_fingerprint="f",
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
    )


def test_only_the_last_prerequisite_releases_the_view() -> None:
    state = _state()
    releases = []
    for step in ("dataset", "subscription", "quota"):
        state, released = transitions.complete_step(state, step, "now")
        releases.append(released)
    assert releases == [[], [], ["view"]]
    assert state.steps["view"].status == "PENDING"
    _again, released = transitions.complete_step(state, "quota", "now")
    assert released == []


def test_view_completion_activates_and_failure_fails_the_tenant() -> None:
    state = _state()
    for step in ("dataset", "subscription", "quota"):
        state, _ = transitions.complete_step(state, step, "now")
    active, _ = transitions.complete_step(state, "view", "now")
    assert active.status == "ACTIVE"
    failed = transitions.fail_step(_state(), "quota", "boom", "now")
    assert failed.status == "FAILED" and failed.steps["quota"].status == "FAILED" and "boom" in (failed.error or "")


def test_every_write_bumps_the_revision() -> None:
    state = _state()
    attempted = transitions.begin_attempt(state, "quota", "now")
    assert attempted.revision == state.revision + 1 and attempted.steps["quota"].attempts == 1


def test_dryrun_config_must_name_exactly_the_eight_checks() -> None:
    config = read_dryrun_config().config
    assert config is not None and all(config.checks.values())
    with pytest.raises(ValueError):
        DryRunConfig(version=1, validation_ttl_minutes=10, checks={"tenant_id_format": True})


def test_environment_overrides_settings(tmp_path: object) -> None:
    settings = load_settings({"ONBOARDING_DATA_DIR": "/tmp/x", "ONBOARDING_BUS_MAX_ATTEMPTS": "7"})
    assert str(settings.data_dir) == "/tmp/x" and settings.event_bus.max_attempts == 7
    with pytest.raises(ValueError):
        load_settings({"ONBOARDING_BACKEND": "azure"})


def test_local_key_manager_is_refused_in_production(tmp_path: object) -> None:
    from pathlib import Path

    from shared.adapters.embedded.local_key_manager import LocalKeyManager

    with pytest.raises(RuntimeError):
        LocalKeyManager(Path(str(tmp_path)) / "k", production=True)


def test_a_broken_dryrun_config_is_a_reported_problem_not_a_failed_start(tmp_path: Path) -> None:
    broken = tmp_path / "dryrun.yml"
    broken.write_text("version: 1\nvalidation_ttl_minutes: 10\nchecks: {tenant_id_format: true}\n")
    setup = read_dryrun_config(broken)
    assert setup.config is None
    assert setup.problem.startswith("dryrun.yml does not load: ValidationError") and "missing" in setup.problem
