"""Rules on what a request may carry: JSON bodies only, printable company names, one way with API key whitespace."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from tests.conftest import SEED_REQUEST, onboard_seed

DRYRUN, ONBOARD, BILLING = "/api/v1/tenants/dryrun", "/api/v1/tenants/onboard", "/api/v1/billing/events"


@pytest.mark.parametrize("path", [DRYRUN, ONBOARD, BILLING])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None])
def test_finding9_a_body_that_is_not_declared_json_is_415(client: FlaskClient, path: str, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, data=json.dumps(SEED_REQUEST), headers=headers)
    assert response.status_code == 415, response.get_json()
    assert response.get_json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert response.get_json()["error"]["field"] == "Content-Type"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"])
def test_finding9_json_with_or_without_a_utf8_charset_is_accepted(client: FlaskClient, content_type: str) -> None:
    response = client.post(DRYRUN, data=json.dumps(SEED_REQUEST), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.get_json()


def test_finding9_json_in_another_charset_is_415(client: FlaskClient) -> None:
    response = client.post(DRYRUN, data=json.dumps(SEED_REQUEST), headers={"Content-Type": "application/json; charset=latin-1"})
    assert response.status_code == 415


HOSTILE_NAMES = {
    "nul": "Acme\x00Corp",
    "carriage return": "Acme\rCorp",
    "line feed": "Acme\nInjected: header",
    "tab": "Acme\tCorp",
    "ansi escape": "Acme \x1b[31mRed\x1b[0m",
    "delete": "Acme\x7f",
    "c1 control": "Acme\x85Corp",
    "right-to-left override": "Acme \u202egnp.exe",
    "left-to-right embedding": "\u202aAcme",
    "pop directional formatting": "Acme\u202c",
    "first strong isolate": "Acme \u2068x\u2069",
    "right-to-left isolate": "\u2067Acme",
}


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=list(HOSTILE_NAMES))
def test_finding9_control_and_bidi_characters_in_company_name_fail_the_dry_run_and_onboard_is_422(
    client: FlaskClient, platform: Any, name: str
) -> None:
    request = {**SEED_REQUEST, "company_name": name}
    dry = client.post(DRYRUN, json=request).get_json()
    check = next(check for check in dry["checks"] if check["name"] == "company_name_format")
    assert (dry["status"], dry["ready_for_onboarding"], check["passed"]) == ("FAILED", False, False)
    assert name not in json.dumps(dry, ensure_ascii=False), "the hostile value is not echoed back"
    assert "U+" in check["detail"]
    onboarded = client.post(ONBOARD, json=request)
    assert onboarded.status_code == 422 and onboarded.get_json()["error"]["field"] == "company_name"
    assert name not in onboarded.get_data(as_text=True)
    assert platform.services.documents.get("tenants", SEED_REQUEST["tenant_id"]) is None


@pytest.mark.parametrize(
    "name", ["Acme Corporation", "Société Générale", "株式会社アクメ", "O'Brien & Sons, Ltd.", "שלום Acme", "Acme\u200dCorp"]
)
def test_finding9_ordinary_company_names_pass(client: FlaskClient, name: str) -> None:
    dry = client.post(DRYRUN, json={**SEED_REQUEST, "company_name": name}).get_json()
    assert next(check for check in dry["checks"] if check["name"] == "company_name_format")["passed"], dry


@pytest.fixture
def served(platform: Any) -> Iterator[int]:
    """The platform's app over real HTTP (werkzeug, as `make run` serves it): the port."""
    server = make_server("127.0.0.1", 0, platform.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def test_finding9_api_key_whitespace_is_stripped_the_same_way_in_the_app_and_over_http(client: FlaskClient, served: int) -> None:
    created = onboard_seed(client)
    key, path = created["api_key"], f"/api/v1/tenants/{SEED_REQUEST['tenant_id']}/overview"
    seen = {}
    for label, presented in {"exact": key, "leading tab": "\t" + key, "trailing space": key + " ", "both": f" {key}\t"}.items():
        in_app = client.get(path, headers={"X-API-Key": presented}).status_code
        connection = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
        connection.putrequest("GET", path)
        connection.putheader("X-API-Key", presented)
        connection.endheaders()
        over_http = connection.getresponse().status
        connection.close()
        seen[label] = (in_app, over_http)
    assert set(seen.values()) == {(200, 200)}, seen


def _route_words() -> set[str]:
    """Every static segment of the route table."""
    from functions.routes import ROUTES

    return {segment for route in ROUTES for segment in route.path.split("/") if segment and "<" not in segment}


def test_finding5_warehouse_fails_the_tenant_id_format_check(client: FlaskClient) -> None:
    dry = client.post(DRYRUN, json={**SEED_REQUEST, "tenant_id": "warehouse"}).get_json()
    check = next(check for check in dry["checks"] if check["name"] == "tenant_id_format")
    assert (dry["ready_for_onboarding"], check["passed"]) == (False, False), check
    assert "reserve" in check["detail"]


def test_finding9_every_route_word_is_refused_as_a_tenant_id(client: FlaskClient) -> None:
    words = _route_words()
    assert {"dryrun", "onboard", "purge-expired", "tenants"} <= words
    for word in sorted(words):
        dry = client.post(DRYRUN, json={**SEED_REQUEST, "tenant_id": word}).get_json()
        check = next(check for check in dry["checks"] if check["name"] == "tenant_id_format")
        assert check["passed"] is False, (word, check)
