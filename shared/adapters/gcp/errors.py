"""Google API errors translated into our port exceptions, in one place for every GCP adapter."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from google.api_core import exceptions as google_errors

from shared.ports import AlreadyExists, BackendError, BackendUnavailable, NotFound, TransactionConflict

_UNAVAILABLE = (
    requests.RequestException,
    google_errors.ServiceUnavailable,
    google_errors.DeadlineExceeded,
    google_errors.TooManyRequests,
    google_errors.ResourceExhausted,
    google_errors.InternalServerError,
    google_errors.GatewayTimeout,
    google_errors.RetryError,
)


def translate(error: Exception, what: str) -> BackendError:
    """Our exception for a vendor error raised while doing `what`."""
    detail = f"{what}: {type(error).__name__}: {getattr(error, 'message', None) or error}"[:500]
    if isinstance(error, google_errors.NotFound):
        return NotFound(detail)
    if isinstance(error, google_errors.Aborted):  # a subclass of Conflict (409): test it first
        return TransactionConflict(detail)
    if isinstance(error, google_errors.AlreadyExists | google_errors.Conflict):
        return AlreadyExists(detail)
    if isinstance(error, (*_UNAVAILABLE, TimeoutError, ConnectionError)):
        return BackendUnavailable(detail)
    translated = BackendError(detail)
    if isinstance(error, google_errors.ClientError):
        # 4xx other than the above: our request is wrong, trying it again will not help.
        translated.retryable = False
    return translated


@contextmanager
def google_errors_as_ours(what: str) -> Iterator[None]:
    """Re-raise any Google API error inside the block as a BackendError subclass."""
    try:
        yield
    except BackendError:
        raise
    except (
        google_errors.GoogleAPIError,
        requests.RequestException,
        concurrent.futures.TimeoutError,
        TimeoutError,
        ConnectionError,
    ) as error:
        raise translate(error, what) from error
