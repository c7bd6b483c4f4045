"""Exceptions every adapter raises instead of its vendor's, so handlers decide retry in one place."""

from __future__ import annotations


class BackendError(Exception):
    """A backend call failed; `retryable` says whether trying again may help."""

    retryable = True


class BackendUnavailable(BackendError):
    """The backend did not answer in time or refused for load; retry later."""


class RateLimited(BackendUnavailable):
    """The service refused for rate, a quota or a concurrent update; retry after a backoff.

    The message carries the service's own text (BigQuery's "Too many DML statements
    outstanding against table ...", "Could not serialize access to table ...").
    """


class TransactionConflict(BackendError):
    """A transaction's precondition failed because another writer got there first."""


class AlreadyExists(BackendError):
    """A create-if-absent found the document or resource already there."""

    retryable = False


class NotFound(BackendError):
    """The document, dataset, table or key does not exist."""

    retryable = False


class DecryptionFailed(BackendError):
    """A ciphertext did not decrypt under this key and associated data."""

    retryable = False
