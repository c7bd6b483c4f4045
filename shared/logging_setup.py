"""JSON logs to stdout with the tenant, step and event in context, and API keys redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from shared.domain.api_keys import KEY_PATTERN
from shared.tracing import SAMPLED_FIELD, SPAN_FIELD, TRACE_FIELD, current_trace, trace_project

_CONTEXT: ContextVar[dict[str, str] | None] = ContextVar("log_context", default=None)
_REDACTED = "[REDACTED]"
_SECRET = re.compile(KEY_PATTERN.pattern)


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields (tenant_id, step, event_id) to every log record in this block."""
    merged = {**(_CONTEXT.get() or {}), **{key: value for key, value in fields.items() if value}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def redact(text: str) -> str:
    """`text` with anything shaped like an API key replaced."""
    return _SECRET.sub(_REDACTED, text)


class ContextFilter(logging.Filter):
    """Puts the context fields and the current trace on each record and scrubs secrets from its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_CONTEXT.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        trace = current_trace()
        if trace is not None and not hasattr(record, TRACE_FIELD):
            setattr(record, TRACE_FIELD, trace.resource(trace_project()))
            setattr(record, SPAN_FIELD, trace.span_id)
            setattr(record, SAMPLED_FIELD, trace.sampled)
        record.msg = redact(str(record.msg))
        if record.args:
            record.args = tuple(redact(str(arg)) for arg in record.args) if isinstance(record.args, tuple) else record.args
        return True


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines; the final text is scrubbed again (exception texts included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["severity"] = record.levelname
        log_data["logger"] = record.name


def configure_logging(level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Install the JSON handler on the root logger (idempotent); returns it."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_onboarding", False):
            root.removeHandler(existing)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(RedactingJsonFormatter("{message}", style="{", timestamp=True))
    handler.addFilter(ContextFilter())
    handler._onboarding = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
