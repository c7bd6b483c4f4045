"""Per-process services: built once on first use, so warm function instances reuse clients."""

from __future__ import annotations

import threading

from shared.bootstrap import build_services
from shared.logging_setup import configure_logging
from shared.services import Services

_lock = threading.Lock()
_services: Services | None = None


def get_services() -> Services:
    """The process's Services, built from the environment on first call."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                configure_logging()
                _services = build_services()
    return _services


def install_services(services: Services | None) -> None:
    """Use `services` for this process (the local server and tests wire their own)."""
    global _services
    with _lock:
        _services = services
