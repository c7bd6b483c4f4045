"""Dispatch an HTTP function's request through the route table (imported on first request)."""

from __future__ import annotations

import flask


def serve(function: str, request: flask.Request) -> flask.Response:
    """Dispatch `request` among the routes the table gives to `function`."""
    from functions.routes import ROUTERS  # the table imports the views of every HTTP module

    return ROUTERS[function].dispatch(request)
