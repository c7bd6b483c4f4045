"""A local stand-in for Google's ID-token issuer: an RSA key of our own, its certificate served as
https://www.googleapis.com/oauth2/v1/certs serves Google's, and tokens signed as Google signs them.

The certificates reach google-auth through a real requests transport whose session answers
that one URL from memory, so verification runs exactly as in production, with no network.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth.transport.requests
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUER = "https://accounts.google.com"


def _key_and_certificate(common_name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return private_pem, certificate.public_bytes(serialization.Encoding.PEM)


class _CertsAdapter(requests.adapters.BaseAdapter):
    """Answers GET CERTS_URL with the issuer's certificates (or a chosen failure status)."""

    def __init__(self, issuer: LocalGoogleIssuer) -> None:
        super().__init__()
        self.issuer = issuer

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.issuer.fetches += 1
        response = requests.Response()
        response.url = str(request.url)
        response.request = request
        if request.url != CERTS_URL or self.issuer.certs_status != 200:
            response.status_code = self.issuer.certs_status if request.url == CERTS_URL else 404
            response._content = b"{}"
            return response
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.headers["Cache-Control"] = f"public, max-age={self.issuer.max_age}, must-revalidate, no-transform"
        response._content = json.dumps(self.issuer.certs).encode()
        return response

    def close(self) -> None:
        """Nothing to release."""


class LocalGoogleIssuer:
    """Signs Google-shaped ID tokens with a locally generated RSA key and serves its certificate."""

    def __init__(self, key_id: str = "local-test-key") -> None:
        private_pem, certificate_pem = _key_and_certificate("local-google-issuer")
        self.key_id = key_id
        self._signer = crypt.RSASigner.from_string(private_pem, key_id=key_id)
        self.certs = {key_id: certificate_pem.decode()}
        self.certs_status = 200
        self.max_age = 21600
        self.fetches = 0

    def transport(self) -> google.auth.transport.requests.Request:
        """A google-auth requests transport whose session serves this issuer's certificates."""
        session = requests.Session()
        session.mount("https://", _CertsAdapter(self))
        return google.auth.transport.requests.Request(session)

    def token(self, subject_email: str, audience: str, *, lifetime: int = 3600, issued_ago: int = 0, **claims: Any) -> str:
        """An ID token for `subject_email` and `audience`, as Google would issue it; `claims` override any field."""
        email = subject_email
        now = int(time.time()) - issued_ago
        payload = {
            "iss": ISSUER,
            "aud": audience,
            "sub": str(abs(hash(email))),
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + lifetime,
        } | claims
        return jwt.encode(self._signer, payload).decode()
