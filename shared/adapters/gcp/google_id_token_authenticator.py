"""GoogleIdTokenAuthenticator: operators present a Google-signed ID token of a configured member.

The front door (API Gateway) checks the token's signature, issuer and audience before the
request reaches a function; the function checks it again here, and the member list too, so a
function reached any other way is no weaker than the front door.

- Verification: `google.oauth2.id_token.verify_oauth2_token` checks the RS256 signature against
  Google's published certificates, `exp`/`iat`, the issuer (accounts.google.com) and the audience.
  https://googleapis.dev/python/google-auth/latest/reference/google.oauth2.id_token.html
- Google ID tokens carry the caller's `email` (and `email_verified`) but no group membership,
  https://cloud.google.com/docs/authentication/token-types#id, so a `group:` member cannot be
  checked from the token: operators are listed one by one (users or service accounts).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.auth import transport
from google.oauth2 import id_token

from shared.domain.errors import Forbidden, OperatorUnauthorized
from shared.ports import BackendUnavailable, Operator, OperatorAuthenticator

_MEMBER_KINDS = ("user:", "serviceAccount:")
_CLOCK_SKEW_SECONDS = 10
_MAX_AGE = re.compile(r"max-age=(\d+)")
_DEFAULT_CERTS_SECONDS = 300


class CachingCertsRequest(transport.Request):
    """A transport that keeps each successful GET for as long as its Cache-Control allows.

    google-auth fetches Google's certificates on every verification; Google publishes them
    with a Cache-Control max-age and asks verifiers to cache them
    (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken),
    so a warm function verifies a token without a round trip.
    """

    def __init__(self, inner: transport.Request, clock: Callable[[], float] = time.monotonic) -> None:
        self._inner = inner
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[float, transport.Response]] = {}

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, timeout: Any = None, **kwargs: Any) -> Any:
        if method != "GET" or body is not None:
            return self._inner(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
        with self._lock:
            cached = self._cached.get(url)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
        response = self._inner(url, method=method, headers=headers, timeout=timeout, **kwargs)
        if response.status == 200:
            match = _MAX_AGE.search(response.headers.get("cache-control", "") or response.headers.get("Cache-Control", ""))
            lifetime = int(match.group(1)) if match else _DEFAULT_CERTS_SECONDS
            with self._lock:
                self._cached[url] = (self._clock() + lifetime, response)
        return response


def operator_emails(members: Iterable[str]) -> frozenset[str]:
    """Emails of `user:`/`serviceAccount:` members (or bare emails); refuses groups, which a token cannot prove."""
    emails: set[str] = set()
    for member in (m.strip() for m in members):
        if not member:
            continue
        if member.startswith("group:") or member.startswith("domain:"):
            raise ValueError(f"operator member {member!r}: an ID token carries no group or domain; list users or service accounts")
        email = next((member.removeprefix(kind) for kind in _MEMBER_KINDS if member.startswith(kind)), member)
        if "@" not in email or ":" in email:
            raise ValueError(f"operator member {member!r} is not user:EMAIL, serviceAccount:EMAIL or an email")
        emails.add(email.lower())
    return frozenset(emails)


class GoogleIdTokenAuthenticator(OperatorAuthenticator):
    """Verifies Google ID tokens for `audiences` and admits the listed operator emails."""

    def __init__(self, audiences: Sequence[str], members: Iterable[str], request: transport.Request | None = None) -> None:
        # Every function is built with this port, event functions and the bootstrap command too:
        # unconfigured, it refuses every operator rather than stopping those that need none.
        self._audiences = list(audiences)
        self._emails = operator_emails(members)  # none: every identity is refused (403) until operators are listed
        request = request or google.auth.transport.requests.Request(requests.Session())
        self._request = request if isinstance(request, CachingCertsRequest) else CachingCertsRequest(request)

    def authenticate(self, credential: str) -> Operator:
        if not self._audiences:
            raise OperatorUnauthorized("no operator token audience is configured here (ONBOARDING_OPERATOR_AUDIENCES)")
        claims = self._verified_claims(credential)
        email = str(claims.get("email") or "").lower()
        if not email or claims.get("email_verified") is not True:
            raise OperatorUnauthorized("the ID token carries no verified email", invalid_token=True)
        if email not in self._emails:
            raise Forbidden(f"{email} is not an operator of this API", field="Authorization")
        return Operator(subject=email)

    def _verified_claims(self, credential: str) -> Mapping[str, Any]:
        try:
            claims: Mapping[str, Any] = id_token.verify_oauth2_token(  # type: ignore[no-untyped-call]
                credential, self._request, audience=self._audiences, clock_skew_in_seconds=_CLOCK_SKEW_SECONDS
            )
            return claims
        except google.auth.exceptions.TransportError as error:
            raise BackendUnavailable(f"Google's token certificates could not be fetched: {type(error).__name__}") from None
        except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
            raise OperatorUnauthorized(f"the ID token is not valid: {_reason(error)}", invalid_token=True) from None

    def describe(self) -> str:
        return f"Google ID tokens for {len(self._audiences)} audience(s), {len(self._emails)} operator member(s)"


def _reason(error: Exception) -> str:
    """The verifier's reason without the token or its claims (which would echo caller data)."""
    text = str(error)
    for known in ("expired", "Token used too early", "audience", "issuer", "signature", "Wrong number of segments"):
        if known.lower() in text.lower():
            return known
    return type(error).__name__
