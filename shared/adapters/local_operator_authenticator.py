"""LocalOperatorAuthenticator: one shared bearer token for operators (make run, make emulate); never in production."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from shared.domain.errors import OperatorUnauthorized
from shared.ports import Operator, OperatorAuthenticator

logger = logging.getLogger(__name__)
TOKEN_FILE = "operator-token"  # noqa: S105 (a file name, not a secret)
_MIN_TOKEN_CHARACTERS = 16


def load_or_create_token(path: Path) -> str:
    """The token kept in `path`, or a new one written there first (mode 0600); logs the path, never the token.

    The new file is written whole under a temporary name and linked into place, so a second
    process starting at the same moment reads either no file or the complete token.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(staged, path)
            logger.info("operator token generated", extra={"token_file": str(path)})
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    token = path.read_text().strip()
    if len(token) < _MIN_TOKEN_CHARACTERS:
        raise RuntimeError(f"{path} holds no operator token of at least {_MIN_TOKEN_CHARACTERS} characters")
    return token


class LocalOperatorAuthenticator(OperatorAuthenticator):
    """Accepts exactly one token, compared in constant time (`hmac.compare_digest`)."""

    def __init__(self, token: str, *, source: str, production: bool) -> None:
        if production:
            raise RuntimeError("the local operator token is refused in production; operators sign in with Google ID tokens")
        if len(token) < _MIN_TOKEN_CHARACTERS:
            raise RuntimeError(f"the operator token must have at least {_MIN_TOKEN_CHARACTERS} characters")
        self._token = token.encode()
        self._source = source

    @classmethod
    def configured(cls, token: str, data_dir: Path, *, production: bool) -> LocalOperatorAuthenticator:
        """The token given (ONBOARDING_OPERATOR_TOKEN), or else the one in the data dir (generated at first start)."""
        if token:
            return cls(token, source="ONBOARDING_OPERATOR_TOKEN", production=production)
        path = data_dir / TOKEN_FILE
        return cls(load_or_create_token(path), source=str(path), production=production)

    def authenticate(self, credential: str) -> Operator:
        if not hmac.compare_digest(credential.encode(), self._token):
            raise OperatorUnauthorized("the operator token is not valid", invalid_token=True)
        return Operator(subject="local-operator")

    def describe(self) -> str:
        return f"local operator token from {self._source}"
