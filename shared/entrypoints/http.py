"""HTTP plumbing shared by the HTTP functions: routing, JSON bodies, errors as JSON."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import flask
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.routing import Map, Rule

from schemas.http import ErrorDetail, ErrorResponse
from shared.domain.errors import (
    DomainError,
    Forbidden,
    InvalidJson,
    InvalidRequest,
    MethodNotAllowed,
    OperatorUnauthorized,
    PayloadTooLarge,
    RouteNotFound,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from shared.entrypoints.runtime import get_services
from shared.handlers.queries import tenant_of_key
from shared.logging_setup import log_context
from shared.metrics import observe_request
from shared.ports import BackendError
from shared.services import Services
from shared.tracing import from_headers, trace_scope

logger = logging.getLogger(__name__)
_OPERATOR: ContextVar[str | None] = ContextVar("operator", default=None)
M = TypeVar("M", bound=BaseModel)
View = Callable[..., flask.Response]

# Every body is a flat object of scalars; deeper JSON is refused before validation.
MAX_JSON_DEPTH = 32
_PYDANTIC_CODES = {
    "missing": "MISSING_FIELD",
    "extra_forbidden": "UNKNOWN_FIELD",
}


def json_response(body: BaseModel | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    """A JSON response from a contract or a dict."""
    payload = body.model_dump_json() if isinstance(body, BaseModel) else json.dumps(body)
    return flask.Response(payload, status=status, mimetype="application/json", headers=headers)


def error_response(error: DomainError, headers: dict[str, str] | None = None) -> flask.Response:
    """`{"error": {code, message, field}}` with the error's status (and its challenge, for a 401)."""
    body = ErrorResponse(error=ErrorDetail(code=error.code, message=error.message, field=error.field))
    if isinstance(error, Unauthorized):
        headers = {**(headers or {}), "WWW-Authenticate": error.challenge}
    if error.retry_after is not None:
        headers = {**(headers or {}), "Retry-After": str(error.retry_after)}
    return json_response(body, error.status, headers)


MAX_IDEMPOTENCY_KEY = 200


def idempotency_key_of(request: flask.Request) -> str | None:
    """The request's Idempotency-Key, if any (at most 200 characters)."""
    idempotency_key = request.headers.get("Idempotency-Key") or None
    if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest(f"Idempotency-Key is over {MAX_IDEMPOTENCY_KEY} characters", field="Idempotency-Key")
    return idempotency_key


def public_url(request: flask.Request, path: str) -> str:
    """`path` as an absolute URL on the front door: the configured base URL, else this server's own."""
    base = get_services().settings.auth.public_base_url or request.host_url
    return base.rstrip("/") + path


class Caller(StrEnum):
    """Who may call a route: anyone, the tenant named in the path (X-API-Key), or an operator."""

    PUBLIC = "public"
    TENANT = "tenant"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Parameter:
    """A query or header parameter of a route, for the documents generated from the table."""

    name: str
    location: str  # "query" or "header"
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Route:
    """One row of the route table: what the router serves, the front door deploys and /openapi.json documents.

    `responses` maps each success status to its body model; `errors` lists the statuses
    particular to this route (the ones every route of its kind can give are added by
    `error_statuses`). Every error body is an ErrorResponse.
    """

    method: str
    path: str  # werkzeug rule syntax: /api/v1/tenants/<tenant_id>
    function: str  # the Cloud Function (entry point in main.py) that serves it
    caller: Caller
    view: View
    summary: str
    responses: Mapping[int, type[BaseModel] | Mapping[str, Any]]
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    deadline_seconds: float | None = None  # at the front door; None: API Gateway's default (15 s)
    operation: str | None = None  # the operationId, where a function serves two routes of one method
    media_type: str = "application/json"  # of the success bodies (errors are always JSON)


def error_statuses(route: Route) -> tuple[int, ...]:
    """Every error status `route` can answer: its own, its caller class's, its body's, and any backend's.

    (A 405 belongs to no operation: it answers a method the path does not serve, with `Allow`.)
    """
    statuses = set(route.errors) | {500, 503}
    if route.caller is not Caller.PUBLIC:
        statuses |= {401, 403}
    if route.request is not None:
        statuses |= {400, 413, 422}
    return tuple(sorted(statuses))


def _bearer(request: flask.Request) -> str | None:
    """The operator's bearer token: the one API Gateway forwards, else the request's own.

    Behind API Gateway, `Authorization` holds the gateway's own identity token (it is the
    functions' only invoker) and the caller's header arrives as `X-Forwarded-Authorization`:
    https://cloud.google.com/api-gateway/docs/oasv2-extensions#x-google-backend
    """
    header = request.headers.get("X-Forwarded-Authorization") or request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OperatorUnauthorized("Authorization must be 'Bearer <token>'", invalid_token=True)
    return token.strip()


def authorize(route: Route, request: flask.Request) -> str | None:
    """Let through only the route's caller class: 401 (with a challenge) without valid credentials, 403 for another class.

    Returns the operator's subject on operator routes (for the logs), else None.
    """
    if route.caller is Caller.PUBLIC:
        return None
    services = get_services()
    api_key = request.headers.get("X-API-Key")
    if route.caller is Caller.TENANT:
        if api_key:
            return None  # the view checks that the key belongs to the tenant of the path
        if _is_operator(request, services):
            raise Forbidden("this route is the tenant's own: call it with the tenant's X-API-Key", field="X-API-Key")
        raise Unauthorized("X-API-Key header is required", field="X-API-Key")
    token = _bearer(request)
    if token is not None:
        if services.operators is None:
            raise OperatorUnauthorized("no operator authentication is configured on this server")
        return services.operators.authenticate(token).subject
    if api_key and tenant_of_key(api_key, services) is not None:
        raise Forbidden("operator route: a tenant's API key cannot call it", field="X-API-Key")
    raise OperatorUnauthorized("operator route: send 'Authorization: Bearer <operator token>'")


def current_operator() -> str | None:
    """The operator the request being served authenticated as (its subject), or None."""
    return _OPERATOR.get()


def _is_operator(request: flask.Request, services: Services) -> bool:
    """True when the request carries a valid operator credential (any fault in it reads as no)."""
    try:
        token = _bearer(request)
        return token is not None and services.operators is not None and bool(services.operators.authenticate(token))
    except (Unauthorized, Forbidden):
        return False


def http_error(error: HTTPException) -> flask.Response:
    """A JSON error for what the web framework refuses before any route runs (a path no rule can match)."""
    status = error.code or 400
    body = ErrorResponse(error=ErrorDetail(code=error.name.upper().replace(" ", "_"), message=error.description or error.name))
    return json_response(body, status if status < 500 else 400)


def read_json(request: flask.Request, model: type[M], max_bytes: int) -> M:
    """Parse a bounded JSON object body into `model`; DomainErrors say what is wrong."""
    require_json_content_type(request)
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"body is over {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"body is over {max_bytes} bytes")
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidJson("body is not valid JSON: nested too deeply") from None
    except ValueError as error:  # not UTF-8, not JSON, NaN, or an integer past Python's digit limit
        raise InvalidJson(f"body is not valid JSON: {error.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    _check_shape(data)
    return validate(model, data)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 section 6)")


def _check_shape(data: dict[str, Any]) -> None:
    """Bounded nesting and text that is Unicode (no lone surrogates from `\\ud800` escapes), before any model sees it."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidJson(f"body is not valid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not _is_unicode(value):
            raise InvalidJson("body is not valid JSON: a string holds a lone surrogate")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_json_content_type(request: flask.Request) -> None:
    """415 unless the body is declared `application/json` (a charset, if given, must be UTF-8, as JSON is: RFC 8259 section 8.1)."""
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype != "application/json" or charset not in {"utf-8", "utf8"}:
        raise UnsupportedMediaType("the body must be sent as Content-Type: application/json", field="Content-Type")


def validate(model: type[M], data: dict[str, Any]) -> M:
    """`model` from `data`, or InvalidRequest naming the first field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        first = problems[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        summary = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
        invalid = InvalidRequest(summary, field=field)
        invalid.code = _PYDANTIC_CODES.get(first["type"], "INVALID_TYPE" if first["type"].endswith("_type") else "INVALID_VALUE")
        raise invalid from None


class Router:
    """Maps paths to routes with werkzeug's rules (a static path beats a pattern), checks the method, then the caller.

    Matching the path before the method makes `GET /api/v1/tenants/onboard` a 405, not a
    look-up of a tenant called "onboard".
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes: dict[str, dict[str, Route]] = {}
        for route in routes:
            self._routes.setdefault(route.path, {})[route.method] = route
        self._map = Map([Rule(path, endpoint=path, strict_slashes=False) for path in self._routes], merge_slashes=False)

    def dispatch(self, request: flask.Request) -> flask.Response:
        """Run the matching view under the request's trace; an error answer is logged with `httpRequest`."""
        started = time.monotonic()
        with trace_scope(from_headers(request.headers)):
            response, route = self._dispatch(request)
            latency = time.monotonic() - started
            observe_request(route.function if route is not None else "unrouted", request.method, response.status_code, latency)
            if response.status_code >= 400:
                _log_error_answer(request, response, latency)
        return response

    def _dispatch(self, request: flask.Request) -> tuple[flask.Response, Route | None]:
        """Run the matching view for an allowed caller; every failure becomes a JSON error, never a stack trace."""
        try:
            template, arguments = self._map.bind("localhost").match(request.path, method="GET")
        except (WerkzeugNotFound, WerkzeugMethodNotAllowed):
            return error_response(RouteNotFound(f"no route {request.path}")), None
        routes = self._routes[str(template)]
        route = routes.get(request.method) or (routes.get("GET") if request.method == "HEAD" else None)
        if route is None:
            allowed = ", ".join(sorted(routes))
            refusal = MethodNotAllowed(f"{request.method} is not allowed here (allowed: {allowed})")
            return error_response(refusal, {"Allow": allowed}), None
        found = route

        def call() -> flask.Response:
            operator = authorize(found, request)
            token = _OPERATOR.set(operator)
            try:
                with log_context(operator=operator):
                    return found.view(request, **arguments)
            finally:
                _OPERATOR.reset(token)

        return guarded(call), route


def _log_error_answer(request: flask.Request, response: flask.Response, latency: float) -> None:
    """One line per error answer, with Cloud Logging's `httpRequest` (its request log, locally and on Google Cloud).

    Fields as in https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry#HttpRequest;
    the URL is the path and query only (no credential travels in either).
    """
    query = request.query_string.decode("latin-1")[:300]
    http_request = {
        "requestMethod": request.method,
        "requestUrl": request.path[:500] + (f"?{query}" if query else ""),
        "status": response.status_code,
        "responseSize": str(response.content_length or 0),
        "userAgent": (request.user_agent.string or "")[:200],
        "remoteIp": request.remote_addr or "",
        "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "latency": f"{latency:.6f}s",
    }
    level = logging.ERROR if response.status_code >= 500 else logging.WARNING
    logger.log(level, "request answered with an error", extra={"httpRequest": http_request})


def guarded(call: Callable[[], flask.Response]) -> flask.Response:
    """Map domain errors to their status, backend failures to 503, anything else to a bare 500."""
    try:
        return call()
    except DomainError as error:
        return error_response(error)
    except BackendError as error:
        logger.warning("backend failure", extra={"error_type": type(error).__name__, "reason": str(error)[:300]})
        return error_response(ServiceUnavailable("a backend is unavailable; nothing was changed, retry later"), {"Retry-After": "1"})
    except Exception:
        logger.exception("unhandled error")
        body = ErrorResponse(error=ErrorDetail(code="INTERNAL", message="internal error"))
        return json_response(body, 500)
