"""The trace of the request that caused the work in hand: read from HTTP headers, carried in message attributes.

An HTTP request's trace comes from W3C `traceparent`, else Google's `X-Cloud-Trace-Context`
(https://cloud.google.com/trace/docs/trace-context), else a new one. It sits in a context
variable; every log line written under it carries `logging.googleapis.com/trace`, and every
message published under it carries a `traceparent` attribute, which the function that receives
the message puts back in context. One onboarding's lines, across every function it touched,
then share one trace in Cloud Logging:
https://cloud.google.com/logging/docs/structured-logging#special-payload-fields
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

TRACE_ATTRIBUTE = "traceparent"  # the message attribute that carries the trace (W3C form)
CLOUD_TRACE_HEADER = "X-Cloud-Trace-Context"
TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"

# https://www.w3.org/TR/trace-context/#traceparent-header-field-values
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
# TRACE_ID/SPAN_ID;o=OPTIONS, the span id in decimal: https://cloud.google.com/trace/docs/trace-context#legacy-http-header
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


@dataclass(frozen=True)
class Trace:
    """A trace id (32 hex digits), the span it was handed from (16 hex digits) and whether it is sampled."""

    trace_id: str
    span_id: str
    sampled: bool = False

    def traceparent(self) -> str:
        """The W3C header value (version 00)."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def resource(self, project: str) -> str:
        """Cloud Logging's name of this trace: `projects/<project>/traces/<trace id>`."""
        return f"projects/{project}/traces/{self.trace_id}"


_CURRENT: ContextVar[Trace | None] = ContextVar("trace", default=None)


def parse_traceparent(value: str | None) -> Trace | None:
    """A `traceparent` header or attribute, or None when absent or malformed (all-zero ids are invalid)."""
    match = _TRACEPARENT.match((value or "").strip())
    if match is None or match.group(1) == "ff" or match.group(2) == _ZERO_TRACE or match.group(3) == _ZERO_SPAN:
        return None
    return Trace(match.group(2), match.group(3), bool(int(match.group(4), 16) & 1))


def parse_cloud_trace_context(value: str | None) -> Trace | None:
    """An `X-Cloud-Trace-Context` header, or None when absent or malformed."""
    match = _CLOUD_TRACE.match((value or "").strip())
    if match is None or match.group(1) == _ZERO_TRACE:
        return None
    span = int(match.group(2) or "0")
    span_id = f"{span:016x}" if 0 < span < 2**64 else secrets.token_hex(8)
    return Trace(match.group(1).lower(), span_id, match.group(3) == "1")


def new_trace() -> Trace:
    """A fresh trace, for a request that brought none."""
    return Trace(secrets.token_hex(16), secrets.token_hex(8))


class _Headers(Protocol):
    def get(self, key: str) -> str | None: ...


def from_headers(headers: _Headers) -> Trace:
    """The trace of an HTTP request: `traceparent`, else `X-Cloud-Trace-Context`, else a new one."""
    return parse_traceparent(headers.get("traceparent")) or parse_cloud_trace_context(headers.get(CLOUD_TRACE_HEADER)) or new_trace()


def from_attributes(attributes: Mapping[str, str] | None) -> Trace | None:
    """The trace a message carries, if any."""
    return parse_traceparent((attributes or {}).get(TRACE_ATTRIBUTE))


def current_trace() -> Trace | None:
    """The trace of the work in hand, if any."""
    return _CURRENT.get()


@contextmanager
def trace_scope(trace: Trace | None) -> Iterator[None]:
    """Make `trace` current for this block (None leaves the current one)."""
    if trace is None:
        yield
        return
    token = _CURRENT.set(trace)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def with_trace(attributes: dict[str, str]) -> dict[str, str]:
    """`attributes` plus the current trace, unless they carry one already."""
    trace = _CURRENT.get()
    if trace is None or TRACE_ATTRIBUTE in attributes:
        return attributes
    return {**attributes, TRACE_ATTRIBUTE: trace.traceparent()}


def trace_project() -> str:
    """The project in the trace's resource name: the one the functions run in (a placeholder locally)."""
    return os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or "local-project"
