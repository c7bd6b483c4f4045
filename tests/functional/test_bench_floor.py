"""The benchmark's floor does the storage work of one onboarding against today's central tables."""

from __future__ import annotations

from pathlib import Path

from scripts.bench import measure_floor


def test_the_floor_onboards_against_the_current_central_schema(tmp_path: Path) -> None:
    """Given fresh embedded backends, when the floor runs, then every append is accepted (a drifted column fails it)."""
    cpu: list[float] = []
    times = measure_floor(tmp_path, 2, cpu)
    assert len(times) == 2 and len(cpu) == 2
    assert all(ms > 0 for ms in times)
