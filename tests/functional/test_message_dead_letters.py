"""Billing and pipeline-result dead letters read a payload's ids the same careful way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shared.bootstrap import build_embedded_services
from shared.handlers.billing import handle_billing_dead_letter
from shared.handlers.pipeline_runs import handle_run_result_dead_letter
from shared.services import DEAD_LETTERS, Services
from tests.conftest import fast_settings

Handler = Callable[..., str]
HANDLERS = [pytest.param(handle_billing_dead_letter, id="billing"), pytest.param(handle_run_result_dead_letter, id="pipeline-results")]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_embedded_services(fast_settings(tmp_path / "data"))
    try:
        yield built
    finally:
        built.close()


@pytest.mark.parametrize("handler", HANDLERS)
def test_ids_are_kept_only_when_well_formed(handler: Handler, services: Services) -> None:
    """Given a payload with a malformed event id and an overlong tenant id, the letter names neither."""
    data = b'{"event_id": "bad id with spaces", "tenant_id": "' + b"t" * 101 + b'"}'
    assert handler(data, "never applies", services, {"dead_letter_attempts": "5"}) == "recorded"
    assert handler(data, "never applies", services) == "duplicate"
    [(_, letter)] = services.documents.scan(DEAD_LETTERS, "dead_lettered_at")
    assert (letter["event_id"], letter["tenant_id"], letter["attempts"]) == (None, None, 5)


@pytest.mark.parametrize("handler", HANDLERS)
def test_readable_ids_are_kept_and_nesting_too_deep_to_parse_is_recorded(handler: Handler, services: Services) -> None:
    """Given well-formed ids they are kept; given JSON nested past the parser's depth, the letter is still recorded."""
    assert handler(b'{"event_id": "evt-1", "tenant_id": "acme", "x": 1', "unreadable", services) == "recorded"
    assert handler(b'{"event_id": "evt-1", "tenant_id": "acme"}', "never applies", services) == "recorded"
    assert handler(b"[" * 100_000 + b"]" * 100_000, "never applies", services) == "recorded"
    letters = [letter for _, letter in services.documents.scan(DEAD_LETTERS, "dead_lettered_at")]
    assert [(letter["event_id"], letter["tenant_id"]) for letter in letters].count(("evt-1", "acme")) == 1
    assert len(letters) == 3
