"""The one backoff loop for refusals a service asks us to retry (RateLimited).

BigQuery documents the remedy for `rateLimitExceeded` and for DML conflicts as "retry the
operation after a few seconds, with exponential backoff"
(https://cloud.google.com/bigquery/docs/troubleshoot-quotas#overview). The BigQuery adapter
and the Google Cloud profile of the embedded warehouse both retry through this function,
so a handler sees the same thing on either.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar

from shared.ports import RateLimited

logger = logging.getLogger(__name__)
T = TypeVar("T")


def with_rate_limit_backoff(
    what: str,
    call: Callable[[], T],
    *,
    attempts: int,
    base_backoff_seconds: float,
    max_backoff_seconds: float,
    sleep: Callable[[float], None],
) -> T:
    """`call()`, retried with jittered exponential backoff while it raises RateLimited; the last refusal is re-raised."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except RateLimited as error:
            if attempt == attempts:
                raise RateLimited(f"{what}: still refused after {attempt} attempts: {error}") from error
            delay = min(max_backoff_seconds, base_backoff_seconds * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            details = {"attempt": attempt, "delay_seconds": round(delay, 3), "reason": str(error)[:200]}
            logger.warning("rate limited, backing off", extra=details)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
