"""The seed onboarding on the Google Cloud profile (time scale 0.01): the same outcome, every backend call modelled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.bootstrap import build_embedded_services
from tests.conftest import fast_settings, onboard_seed, operator_client


@pytest.fixture
def profiled_platform(tmp_path: Path) -> Iterator[Any]:
    from functions.local import LocalPlatform

    settings = fast_settings(tmp_path / "data", ONBOARDING_CLOUD_PROFILE="gcp", ONBOARDING_CLOUD_TIME_SCALE="0.01")
    local = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
    local.start()
    yield local
    local.stop()


def test_the_seed_onboarding_reaches_active_on_the_profile_and_every_call_went_through_it(profiled_platform: Any) -> None:
    body = onboard_seed(operator_client(profiled_platform.app), wait=60)
    assert body["status"] == "ACTIVE"

    guard = profiled_platform.services.guard
    assert guard is not None and guard.profile is not None
    counts = guard.profile.snapshot()
    # The central tables take appends only (profile, subscription, usage quota, validation run),
    # and so does the new validation table: no mutating DML at all on a first onboarding.
    assert counts["bigquery_append"] == 5
    assert counts.get("bigquery_mutating_dml", 0) == 0
    assert counts["bigquery_ddl"] >= 2  # the tenant's table and view (and the central tables at start)
    # The dataset and view functions each started once; subscription and quota are done by the
    # onboarding's own commit, so nothing is delivered to theirs.
    assert counts["cold_starts"] >= 2
    assert counts["deliveries"] >= 2
    assert profiled_platform.bus.stats.snapshot().get("dead_lettered", 0) == 0
