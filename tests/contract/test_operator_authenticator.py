"""The OperatorAuthenticator contract, run against the local token and Google ID tokens (signed locally, no network)."""

from __future__ import annotations

import io
import json
import logging
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.adapters.gcp.google_id_token_authenticator import CachingCertsRequest, GoogleIdTokenAuthenticator, operator_emails
from shared.adapters.local_operator_authenticator import TOKEN_FILE, LocalOperatorAuthenticator
from shared.domain.errors import Forbidden, OperatorUnauthorized
from shared.logging_setup import configure_logging
from shared.ports import BackendUnavailable, OperatorAuthenticator
from tests.fakes.google_tokens import LocalGoogleIssuer

AUDIENCE = "https://onboarding-gateway.example"
OPERATOR_EMAIL = "ops-script@example-project.iam.gserviceaccount.com"


@dataclass
class Wired:
    """An adapter with a credential it must accept and one of the right shape that it must refuse."""

    authenticator: OperatorAuthenticator
    valid: str
    forged: str


def _local(tmp: Path) -> Wired:
    authenticator = LocalOperatorAuthenticator.configured("", tmp, production=False)
    token = (tmp / TOKEN_FILE).read_text().strip()
    return Wired(authenticator, token, token[:-1] + ("A" if token[-1] != "A" else "B"))


def _google(tmp: Path) -> Wired:
    issuer, impostor = LocalGoogleIssuer(), LocalGoogleIssuer()
    authenticator = GoogleIdTokenAuthenticator([AUDIENCE], [f"serviceAccount:{OPERATOR_EMAIL}"], issuer.transport())
    return Wired(authenticator, issuer.token(OPERATOR_EMAIL, AUDIENCE), impostor.token(OPERATOR_EMAIL, AUDIENCE))


ADAPTERS: dict[str, Callable[[Path], Wired]] = {"local-token": _local, "google-id-token": _google}


@pytest.fixture(params=list(ADAPTERS))
def wired(request: pytest.FixtureRequest, tmp_path: Path) -> Wired:
    return ADAPTERS[request.param](tmp_path)


def test_the_valid_credential_names_an_operator(wired: Wired) -> None:
    operator = wired.authenticator.authenticate(wired.valid)
    assert operator.subject and wired.valid not in operator.subject


@pytest.mark.parametrize("kind", ["forged", "empty", "garbage"])
def test_a_bad_credential_is_unauthorized_with_an_invalid_token_challenge(wired: Wired, kind: str) -> None:
    credential = {"forged": wired.forged, "empty": "", "garbage": "not.a.token"}[kind]
    with pytest.raises(OperatorUnauthorized) as refused:
        wired.authenticator.authenticate(credential)
    assert refused.value.status == 401
    assert refused.value.challenge == 'Bearer realm="operators", error="invalid_token"'
    assert credential == "" or credential not in refused.value.message


def test_describe_names_the_method_and_never_the_secret(wired: Wired) -> None:
    assert wired.valid not in wired.authenticator.describe()


# ---------------------------------------------------------------- the local token


def test_the_generated_token_file_is_private_and_its_path_logged_never_the_token(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = configure_logging(stream=stream)
    try:
        LocalOperatorAuthenticator.configured("", tmp_path, production=False)
    finally:
        logging.getLogger().removeHandler(handler)
    path = tmp_path / TOKEN_FILE
    token = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [record["token_file"] for record in records if record["message"] == "operator token generated"] == [str(path)]
    assert token not in stream.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == [TOKEN_FILE]  # no staged copy left behind


def test_a_restart_keeps_the_generated_token(tmp_path: Path) -> None:
    first = LocalOperatorAuthenticator.configured("", tmp_path, production=False)
    token = (tmp_path / TOKEN_FILE).read_text().strip()
    second = LocalOperatorAuthenticator.configured("", tmp_path, production=False)
    assert first.authenticate(token) == second.authenticate(token)


def test_a_configured_token_wins_and_no_file_is_written(tmp_path: Path) -> None:
    authenticator = LocalOperatorAuthenticator.configured("a-configured-operator-token", tmp_path, production=False)
    assert authenticator.authenticate("a-configured-operator-token").subject == "local-operator"
    assert not (tmp_path / TOKEN_FILE).exists()


def test_the_local_token_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="refused in production"):
        LocalOperatorAuthenticator.configured("a-configured-operator-token", tmp_path, production=True)


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="at least 16"):
        LocalOperatorAuthenticator.configured("short", tmp_path, production=False)


# ---------------------------------------------------------------- Google ID tokens


@pytest.fixture
def issuer() -> LocalGoogleIssuer:
    return LocalGoogleIssuer()


@pytest.fixture
def google(issuer: LocalGoogleIssuer) -> GoogleIdTokenAuthenticator:
    members = [f"serviceAccount:{OPERATOR_EMAIL}", "user:Alice@Example.com"]
    return GoogleIdTokenAuthenticator([AUDIENCE, "32555940559.apps.googleusercontent.com"], members, issuer.transport())


def test_a_listed_user_is_an_operator_whatever_the_case_of_the_email(google: GoogleIdTokenAuthenticator, issuer: LocalGoogleIssuer) -> None:
    token = issuer.token("alice@example.com", "32555940559.apps.googleusercontent.com")
    assert google.authenticate(token).subject == "alice@example.com"
    assert issuer.fetches == 1  # the certificates really were fetched through the transport


def test_a_genuine_google_identity_that_is_not_listed_is_forbidden(google: GoogleIdTokenAuthenticator, issuer: LocalGoogleIssuer) -> None:
    with pytest.raises(Forbidden) as refused:
        google.authenticate(issuer.token("mallory@example.com", AUDIENCE))
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://someone-else.example"}, "audience"),
        ({"iss": "https://issuer.example"}, "issuer"),
        ({"exp": 1_000_000, "iat": 999_000}, "expired"),
        ({"email_verified": False}, "no verified email"),
        ({"email": None}, "no verified email"),
    ],
)
def test_a_token_google_would_not_vouch_for_is_unauthorized(
    google: GoogleIdTokenAuthenticator, issuer: LocalGoogleIssuer, claims: dict[str, object], reason: str
) -> None:
    with pytest.raises(OperatorUnauthorized, match=reason):
        google.authenticate(issuer.token(OPERATOR_EMAIL, AUDIENCE, **claims))


def test_the_certificates_are_fetched_once_per_cache_lifetime(issuer: LocalGoogleIssuer) -> None:
    now = [1000.0]
    issuer.max_age = 60
    cached = CachingCertsRequest(issuer.transport(), clock=lambda: now[0])
    google = GoogleIdTokenAuthenticator([AUDIENCE], [f"serviceAccount:{OPERATOR_EMAIL}"], cached)
    for _ in range(3):
        google.authenticate(issuer.token(OPERATOR_EMAIL, AUDIENCE))
    assert issuer.fetches == 1
    now[0] += 61  # past the certificates' max-age: fetched again
    google.authenticate(issuer.token(OPERATOR_EMAIL, AUDIENCE))
    assert issuer.fetches == 2


def test_a_failed_fetch_is_not_cached(issuer: LocalGoogleIssuer) -> None:
    google = GoogleIdTokenAuthenticator([AUDIENCE], [f"serviceAccount:{OPERATOR_EMAIL}"], issuer.transport())
    issuer.certs_status = 503
    with pytest.raises(BackendUnavailable):
        google.authenticate(issuer.token(OPERATOR_EMAIL, AUDIENCE))
    issuer.certs_status = 200
    assert google.authenticate(issuer.token(OPERATOR_EMAIL, AUDIENCE)).subject == OPERATOR_EMAIL


def test_certificates_out_of_reach_are_a_backend_failure_not_the_callers(
    google: GoogleIdTokenAuthenticator, issuer: LocalGoogleIssuer
) -> None:
    issuer.certs_status = 503
    with pytest.raises(BackendUnavailable):
        google.authenticate(issuer.token(OPERATOR_EMAIL, AUDIENCE))


def test_groups_cannot_be_operators_because_a_token_carries_no_group() -> None:
    with pytest.raises(ValueError, match="no group"):
        operator_emails(["group:ops@example.com"])
    assert operator_emails(["user:A@x.com", "serviceAccount:sa@p.iam.gserviceaccount.com", "b@x.com"]) == {
        "a@x.com",
        "sa@p.iam.gserviceaccount.com",
        "b@x.com",
    }


def test_without_an_audience_or_a_member_nobody_is_admitted(issuer: LocalGoogleIssuer) -> None:
    unconfigured = GoogleIdTokenAuthenticator([], ["user:a@x.com"], issuer.transport())
    with pytest.raises(OperatorUnauthorized, match="no operator token audience"):
        unconfigured.authenticate(issuer.token("a@x.com", AUDIENCE))
    nobody = GoogleIdTokenAuthenticator([AUDIENCE], [], issuer.transport())
    with pytest.raises(Forbidden):
        nobody.authenticate(issuer.token(OPERATOR_EMAIL, AUDIENCE))
