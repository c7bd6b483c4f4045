"""HTTP plumbing shared by the HTTP functions: routing, JSON bodies, errors as JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
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
    InvalidJson,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from shared.ports import BackendError

logger = logging.getLogger(__name__)
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
    """`{"error": {code, message, field}}` with the error's status."""
    body = ErrorResponse(error=ErrorDetail(code=error.code, message=error.message, field=error.field))
    return json_response(body, error.status, headers)


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
    """Maps paths to views with werkzeug's rules (a static path beats a pattern), then checks the method.

    Matching the path before the method makes `GET /api/v1/tenants/onboard` a 405, not a
    look-up of a tenant called "onboard".
    """

    def __init__(self, routes: Sequence[tuple[str, str, View]]) -> None:
        self._views: dict[str, dict[str, View]] = {}
        for method, path, view in routes:
            self._views.setdefault(path, {})[method] = view
        self._map = Map([Rule(path, endpoint=path, strict_slashes=False) for path in self._views], merge_slashes=False)

    def dispatch(self, request: flask.Request) -> flask.Response:
        """Run the matching view; every failure becomes a JSON error, never a stack trace."""
        try:
            template, arguments = self._map.bind("localhost").match(request.path, method="GET")
        except (WerkzeugNotFound, WerkzeugMethodNotAllowed):
            return error_response(RouteNotFound(f"no route {request.path}"))
        views = self._views[str(template)]
        view = views.get(request.method) or (views.get("GET") if request.method == "HEAD" else None)
        if view is None:
            allowed = ", ".join(sorted(views))
            return error_response(MethodNotAllowed(f"{request.method} is not allowed here (allowed: {allowed})"), {"Allow": allowed})
        return guarded(lambda: view(request, **arguments))


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
