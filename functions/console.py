"""The operators' console at /console: one page, its script and style sheet, all shipped with the service.

The page holds no data: it signs the operator in with the API's own credential (the bearer token,
kept in the tab's sessionStorage) and reads everything from the operator routes. Its
Content-Security-Policy lets it load and fetch from this origin only.
"""

from __future__ import annotations

from importlib import resources

import flask

# Only this origin: no outside script, style, image, font or fetch, no framing, no form posted elsewhere.
# https://www.w3.org/TR/CSP3/#directives-fetch
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("functions").joinpath("console_assets", name).read_bytes()


def _page(request: flask.Request) -> flask.Response:
    return flask.Response(_read("index.html"), content_type="text/html; charset=utf-8", headers=_HEADERS)


def _script(request: flask.Request) -> flask.Response:
    return flask.Response(_read("console.js"), content_type="text/javascript; charset=utf-8", headers=_HEADERS)


def _style(request: flask.Request) -> flask.Response:
    return flask.Response(_read("console.css"), content_type="text/css; charset=utf-8", headers=_HEADERS)
