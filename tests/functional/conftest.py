"""Fixtures of the functional tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.entrypoints.runtime import install_services
from shared.services import Services


@pytest.fixture
def manual(services: Services) -> Iterator[Services]:
    """Services with no bus workers: the test delivers (or inspects) every message by hand."""
    install_services(services)
    yield services
    install_services(None)
