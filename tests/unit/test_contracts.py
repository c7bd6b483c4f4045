"""Contracts: JSON Schema files match the models, and every message carries a version."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas.export import JSON_DIR, MODELS, rendered
from schemas.http import TenantRequest


def test_committed_json_schemas_match_the_models() -> None:
    expected = rendered()
    actual = {path.name: path.read_text() for path in JSON_DIR.glob("*.json")}
    assert actual == expected, "run `make schemas` and commit schemas/json"


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_contract_has_a_schema_version(model: type) -> None:
    schema = json.loads(rendered()[f"{model.__name__}.json"])
    assert schema["properties"]["schema_version"]["const"] == "1"
    assert schema["additionalProperties"] is False


def test_an_unknown_schema_version_is_refused() -> None:
    with pytest.raises(ValidationError):
        TenantRequest.model_validate(
            {"schema_version": "2", "tenant_id": "t", "company_name": "c", "admin_email": "a", "subscription_plan": "p"}
        )
