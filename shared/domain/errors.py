"""Domain errors; each maps to one HTTP status (requests) or one retry decision (events)."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal the client can act on: code, HTTP status, the field at fault, a message."""

    code = "ERROR"
    status = 400
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(DomainError):
    """The body or a parameter is missing, of the wrong type or out of range."""

    code, status = "INVALID_REQUEST", 422


class InvalidJson(DomainError):
    """The body is not JSON."""

    code, status = "INVALID_JSON", 400


class UnsupportedMediaType(DomainError):
    """A body that is not declared `application/json` (so no page can post one cross-origin as a simple request)."""

    code, status = "UNSUPPORTED_MEDIA_TYPE", 415


class PayloadTooLarge(DomainError):
    """The body is over the size limit."""

    code, status = "PAYLOAD_TOO_LARGE", 413


class RouteNotFound(DomainError):
    """No such route."""

    code, status = "NOT_FOUND", 404


class MethodNotAllowed(DomainError):
    """The route exists, the method does not."""

    code, status = "METHOD_NOT_ALLOWED", 405


class DryRunRequired(DomainError):
    """Onboarding needs a passed, unexpired dry run for the same four values."""

    code, status = "DRYRUN_REQUIRED", 412


class TenantExists(DomainError):
    """The tenant already exists."""

    code, status = "TENANT_EXISTS", 409


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key was reused with a different request."""

    code, status = "IDEMPOTENCY_KEY_REUSED", 422


class TenantNotFound(DomainError):
    """No tenant with this id."""

    code, status = "TENANT_NOT_FOUND", 404


class TenantNotReady(DomainError):
    """The tenant exists but is not ACTIVE yet."""

    code, status = "TENANT_NOT_READY", 409


class Unauthorized(DomainError):
    """No API key, or one we do not know; `challenge` is the WWW-Authenticate header to send."""

    code, status = "UNAUTHORIZED", 401
    challenge = 'ApiKey realm="tenants", header="X-API-Key"'


class OperatorUnauthorized(Unauthorized):
    """An operator route without a valid operator credential (RFC 6750 bearer challenge)."""

    challenge = 'Bearer realm="operators"'

    def __init__(self, message: str, *, invalid_token: bool = False) -> None:
        super().__init__(message, field="Authorization")
        if invalid_token:
            self.challenge = 'Bearer realm="operators", error="invalid_token"'


class Forbidden(DomainError):
    """A valid caller on a route that is not theirs (another tenant's key, a tenant on an operator route)."""

    code, status = "FORBIDDEN", 403


class ServiceUnavailable(DomainError):
    """A backend failed; the request changed nothing and may be retried."""

    code, status = "SERVICE_UNAVAILABLE", 503


class PermanentEventError(Exception):
    """An event that can never succeed (bad schema, unknown tenant): dead-letter it, do not retry."""


class TenantNotFailed(DomainError):
    """Only a FAILED tenant can be retried."""

    code, status = "TENANT_NOT_FAILED", 409


class TenantSuspended(DomainError):
    """The tenant's key is valid but the tenant is suspended (a payment failed)."""

    code, status = "TENANT_SUSPENDED", 403


class QuotaExceeded(DomainError):
    """Admission refused: the tenant reached its daily, monthly or concurrent limit; `retry_after` seconds until it may try again."""

    code, status = "QUOTA_EXCEEDED", 429

    def __init__(self, limit: str, used: int, allowed: int, retry_after: int) -> None:
        super().__init__(f"{limit} pipeline limit reached ({used} of {allowed}); retry after {retry_after} s", field=limit)
        self.limit = limit
        self.retry_after = retry_after


class RunNotFound(DomainError):
    """No pipeline run with this pipeline_logging_id."""

    code, status = "RUN_NOT_FOUND", 404


class TransitionNotAllowed(DomainError):
    """The tenant's status does not allow this operator action (the billing lifecycle refuses it)."""

    code, status = "TRANSITION_NOT_ALLOWED", 409


class ApiKeyNotFound(DomainError):
    """No key of this tenant has that id."""

    code, status = "API_KEY_NOT_FOUND", 404
