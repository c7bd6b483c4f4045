"""A small chaos run inside the suite: every tenant ACTIVE, exactly one of everything, faults really injected."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.chaos import INVARIANTS, run_chaos

pytestmark = pytest.mark.slow

FAULTS = "duplicate=0.5,fail_before=0.1,fail_after=0.1,delay_ms=0-50,reorder=1,backend_fail=0.02,backend_delay_ms=0-5,backend_hang=0.002"


def test_thirty_tenants_onboarded_concurrently_under_faults_all_hold_every_invariant(tmp_path: Path) -> None:
    report = run_chaos(tmp_path / "data", tenants=30, faults=FAULTS, seed=11, concurrency=15, workers=8, timeout=150)
    print("\n".join(report.lines()))
    assert report.accepted == 30
    assert report.violations == []
    assert {name: report.held[name] for name in INVARIANTS} == dict.fromkeys(INVARIANTS, 30)
    # The faults did happen: the run proves something only if they did.
    assert report.bus["duplicates"] > 0
    assert report.bus["injected_failures"] > 0 and report.bus["redeliveries"] > 0
    assert report.calls["injected_failures"] > 0 and report.calls["retries"] > 0
