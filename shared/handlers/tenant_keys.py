"""Tenants' API keys: whose a key is, and whether it may act for the tenant of a path."""

from __future__ import annotations

from datetime import datetime

from shared.domain.api_keys import hash_api_key, presented_api_key
from shared.domain.errors import Forbidden, Unauthorized
from shared.services import API_KEYS, Services


def tenant_of_key(api_key: str, services: Services) -> str | None:
    """The tenant an active API key belongs to, or None for an unknown or revoked key, or one rotated out whose grace is over."""
    key_doc = services.documents.get(API_KEYS, hash_api_key(api_key))
    if key_doc is None or key_doc.get("status") != "ACTIVE":
        return None
    expires_at = key_doc.get("expires_at")
    if expires_at is not None and datetime.fromisoformat(str(expires_at)) <= services.clock():
        return None
    return str(key_doc["tenant_id"])


def authenticate_key(tenant_id: str, api_key: str | None, services: Services) -> None:
    """401 without a known, active key; 403 with another tenant's key (the tenant's status is the caller's to check)."""
    api_key = presented_api_key(api_key)
    if not api_key:
        raise Unauthorized("X-API-Key header is required", field="X-API-Key")
    owner = tenant_of_key(api_key, services)
    if owner is None:
        raise Unauthorized("API key is not valid", field="X-API-Key")
    if owner != tenant_id:
        raise Forbidden("this API key belongs to another tenant", field="X-API-Key")
