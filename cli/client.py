"""The CLI's HTTP client: base URL, the operator's credential, and errors as one clear line.

It calls the HTTP API only (no store, no bus): what it can do is what an operator's
credential lets any client do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "ONBOARDING_URL"
TOKEN_ENV = "ONBOARDING_OPERATOR_TOKEN"  # the server's own variable: the same value on both sides
AUDIENCE_ENV = "ONBOARDING_OPERATOR_AUDIENCE"
DATA_DIR_ENV = "ONBOARDING_DATA_DIR"
DEFAULT_DATA_DIR = ".data"  # configs/settings/defaults.yml: where `make run` writes its token
TOKEN_FILE = "operator-token"  # shared/adapters/local_operator_authenticator.py
_TIMEOUT_SECONDS = 30.0


class CliError(Exception):
    """A failure the commands show as one line on stderr (no traceback), with exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def local_token(data_dir: str | None = None) -> str | None:
    """The local operator token: ONBOARDING_OPERATOR_TOKEN, else the file `make run` generated in its data dir."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR) / TOKEN_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def google_id_token(audience: str) -> str:
    """A Google-signed ID token for `audience` from Application Default Credentials.

    `fetch_id_token` uses a service account key (GOOGLE_APPLICATION_CREDENTIALS) or the metadata
    server: https://googleapis.dev/python/google-auth/latest/reference/google.oauth2.id_token.html.
    A person signed in with gcloud passes `--token "$(gcloud auth print-identity-token)"` instead.
    """
    import google.auth.exceptions
    import google.auth.transport.requests
    from google.oauth2 import id_token

    try:
        token: str = id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)  # type: ignore[no-untyped-call]
    except google.auth.exceptions.GoogleAuthError as error:
        raise CliError(
            f"no Google ID token for audience {audience}: {type(error).__name__}; "
            'set GOOGLE_APPLICATION_CREDENTIALS to a service account key or pass --token "$(gcloud auth print-identity-token)"'
        ) from None
    return token


@dataclass
class Api:
    """Calls to one onboarding API as one operator."""

    url: str
    auth: str = "auto"  # auto | token | google
    token: str | None = None
    audience: str | None = None
    data_dir: str | None = None
    _session: requests.Session = field(default_factory=requests.Session)
    _credential: str | None = None

    def _bearer(self) -> str:
        if self._credential is None:
            self._credential = self.token or self._resolve()
        return self._credential

    def _resolve(self) -> str:
        if self.auth in ("auto", "token"):
            token = local_token(self.data_dir)
            if token is not None:
                return token
            if self.auth == "token":
                where = Path(self.data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR) / TOKEN_FILE
                raise CliError(f"no operator token: set {TOKEN_ENV} or start the server once (make run) so that {where} exists")
        return google_id_token(self.audience or os.environ.get(AUDIENCE_ENV) or self.url)

    def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        """The JSON body of a 2xx answer; CliError with the API's error (code, message, field) otherwise."""
        url = self.url.rstrip("/") + path
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            response = self._session.request(
                method,
                url,
                json=body,
                params=query,
                headers={"Authorization": f"Bearer {self._bearer()}", **(headers or {})},
                timeout=_TIMEOUT_SECONDS,
            )
        except requests.ConnectionError:
            raise CliError(f"cannot reach {self.url}: connection refused or no route (is the server running? `make run`)") from None
        except requests.Timeout:
            raise CliError(f"{method} {path}: no answer from {self.url} within {_TIMEOUT_SECONDS:.0f} s") from None
        except requests.RequestException as error:
            raise CliError(f"{method} {path}: {type(error).__name__}") from None
        return _answer(method, path, response)


def _answer(method: str, path: str, response: requests.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.ok:
        if body is None:
            raise CliError(f"{method} {path}: HTTP {response.status_code} without a JSON body")
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise CliError(f"{method} {path}: HTTP {response.status_code} {response.reason}")
    field_note = f" (field {error['field']})" if error.get("field") else ""
    raise CliError(f"{response.status_code} {error.get('code', 'ERROR')}: {error.get('message', '')}{field_note}")
