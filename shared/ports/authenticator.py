"""Port: who is calling an operator route (a local bearer token, or a Google-signed ID token)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Operator:
    """An authenticated operator: who, for the audit log (never the credential itself)."""

    subject: str


class OperatorAuthenticator(ABC):
    """Turns the credential of an operator route into an Operator.

    Raises `OperatorUnauthorized` for a missing, malformed, expired or forged credential,
    `Forbidden` for a genuine identity that is not an operator, and `BackendError` when the
    verification itself could not run (it is then not the caller's fault).
    """

    @abstractmethod
    def authenticate(self, credential: str) -> Operator:
        """The operator the credential proves, or one of the errors above."""

    def describe(self) -> str:
        """How operators are authenticated here (no secret in it)."""
        return type(self).__name__
