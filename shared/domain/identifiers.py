"""Tenant ids double as BigQuery dataset names, so they are checked before any use; request fingerprints."""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

TENANT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,50}$")
# Names the warehouse keeps for itself; a tenant dataset must never collide with them.
RESERVED_DATASET_NAMES = frozenset({"main", "information_schema", "pg_catalog", "temp", "system"})


def tenant_id_problem(tenant_id: str, reserved: frozenset[str] = frozenset()) -> str | None:
    """Why `tenant_id` is not a usable tenant id and dataset name, or None if it is."""
    if not tenant_id.isascii():
        return "tenant_id must use ASCII letters, digits and underscores only"
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        if not 3 <= len(tenant_id) <= 50:
            return f"tenant_id must be 3 to 50 characters long (got {len(tenant_id)})"
        return "tenant_id may contain only letters, digits and underscores"
    if tenant_id.startswith("_"):
        return "tenant_id must not start with an underscore (BigQuery hides such datasets)"
    if tenant_id.lower() in RESERVED_DATASET_NAMES | {name.lower() for name in reserved}:
        return f"tenant_id '{tenant_id}' is a reserved dataset name"
    return None


def folded_tenant_id(tenant_id: str) -> str:
    """The id with case folded: two tenants whose ids differ only by case would be one tenant to a human,
    and one dataset to a case-insensitive warehouse, so only one of them may exist."""
    return tenant_id.lower()


def case_twin_problem(tenant_id: str, claimed_by: str | None) -> str | None:
    """Why `tenant_id` is taken by `claimed_by` (the tenant holding its folded id), or None if it is free or the same id."""
    if claimed_by is None or claimed_by == tenant_id:
        return None
    return f"tenant id '{tenant_id}' differs only by case from the existing tenant '{claimed_by}'"


def dataset_identifier(name: str) -> str:
    """`name` if it is safe to splice into SQL as a dataset name; raises ValueError otherwise."""
    if not TENANT_ID_PATTERN.fullmatch(name) and not re.fullmatch(r"^[A-Za-z][A-Za-z0-9_]{0,1023}$", name):
        raise ValueError("not a valid dataset name")
    return name


class Fingerprinted(Protocol):
    """A request that names the values a passed dry run vouches for."""

    def fingerprint_fields(self) -> tuple[str, str, str, str]:
        """tenant_id, company_name, admin_email, subscription_plan."""
        ...


def request_fingerprint(request: Fingerprinted) -> str:
    """A stable id of the four values a dry run vouches for."""
    return hashlib.sha256("\x1f".join(request.fingerprint_fields()).encode()).hexdigest()
