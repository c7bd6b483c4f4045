"""Finding 9: the data dir is its owner's only (0700), and so is every file in it (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from shared.bootstrap import build_embedded_services
from shared.config import Settings
from tests.conftest import onboard_seed


def _modes(data_dir: Path) -> dict[str, int]:
    return {str(path.relative_to(data_dir)): stat.S_IMODE(path.stat().st_mode) for path in data_dir.rglob("*")}


def test_finding9_data_dir_0700_and_every_file_0600_after_a_session(platform: Any, client: FlaskClient, settings: Settings) -> None:
    onboard_seed(client)
    data_dir = settings.data_dir
    modes = _modes(data_dir)
    assert {"documents.db", "events.db", "warehouse.duckdb", "local-kms.key"} <= set(modes)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert {name: mode for name, mode in modes.items() if mode != 0o600} == {}


def test_finding9_an_older_data_dir_is_narrowed_on_start(settings: Settings) -> None:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    stray = data_dir / "documents.db"
    stray.touch()
    os.chmod(stray, 0o644)
    services = build_embedded_services(settings)
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert {name: mode for name, mode in _modes(data_dir).items() if mode != 0o600} == {}
    finally:
        services.close()
