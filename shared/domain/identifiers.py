"""Tenant ids double as BigQuery dataset names, so they are checked before any use; request fingerprints."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Protocol

TENANT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_]{3,50}$")
# The embedded warehouse (DuckDB) resolves `name.table` against catalogs before schemas: its
# catalogs (`duckdb_databases()`: the data file's own, named after warehouse.duckdb, plus system
# and temp) and built-in schemas (`duckdb_schemas()`) cannot be a tenant's dataset. A test
# checks this list against what the engine reports.
EMBEDDED_RESERVED_NAMES = frozenset({"warehouse", "system", "temp", "main", "information_schema", "pg_catalog"})
# BigQuery: INFORMATION_SCHEMA qualifies a dataset or region in queries
# (https://cloud.google.com/bigquery/docs/information-schema-intro#syntax); a name beginning with
# an underscore is a hidden dataset (https://cloud.google.com/bigquery/docs/datasets#dataset-naming),
# refused by its own rule below.
BIGQUERY_RESERVED_NAMES = frozenset({"information_schema"})
# Every static segment of the API's paths: a tenant named `dryrun` could be onboarded but never
# looked up. A test derives the segments from the route table and checks each is refused.
ROUTE_WORDS = frozenset(
    {"api", "v1", "tenants", "dryrun", "onboard", "overview", "retry", "events", "billing", "healthz", "pipelines", "run", "results"}
    | {"suspend", "resume", "offboard", "rotate", "revoke"}
    | {"metrics", "console"}
)
# Names a tenant dataset must never take, whichever warehouse serves it.
RESERVED_DATASET_NAMES = EMBEDDED_RESERVED_NAMES | BIGQUERY_RESERVED_NAMES | ROUTE_WORDS


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
    return _reserved_name_problem(tenant_id, reserved)


def _reserved_name_problem(tenant_id: str, reserved: frozenset[str]) -> str | None:
    folded = tenant_id.lower()
    if folded in ROUTE_WORDS:
        return f"tenant_id '{tenant_id}' is a word of the API's paths"
    if folded in EMBEDDED_RESERVED_NAMES | BIGQUERY_RESERVED_NAMES:
        return f"tenant_id '{tenant_id}' is a name reserved by a warehouse"
    if folded in {name.lower() for name in reserved}:
        return f"tenant_id '{tenant_id}' is the name of a dataset of this platform"
    return None


PIPELINE_SEGMENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,49}$")


def pipeline_segment_problem(name: str, value: str) -> str | None:
    """Why a provider, domain or template segment of a pipeline path is unusable, or None.

    The same alphabet as tenant ids (ASCII letters, digits, underscores) plus hyphens, 1 to 50
    characters, starting with a letter or digit: safe in a document id, a log line and a label.
    """
    if not value.isascii() or not PIPELINE_SEGMENT_PATTERN.fullmatch(value):
        return f"{name} must be 1 to 50 ASCII letters, digits, underscores or hyphens, starting with a letter or digit"
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


# Bidirectional embeddings, overrides and isolates: they reorder how text around them is shown.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def company_name_problem(company_name: str) -> str | None:
    """Why `company_name` may not be stored and shown, or None.

    Control characters (NUL, CR/LF, the ESC of ANSI escapes, C1) and bidi controls would let a
    name forge log lines, terminal output or the order of what an operator reads. The message
    names the code point, never the character itself.
    """
    for position, character in enumerate(company_name):
        if character in BIDI_CONTROLS:
            return f"company_name contains the bidirectional control U+{ord(character):04X} at position {position}"
        if unicodedata.category(character) == "Cc":
            return f"company_name contains the control character U+{ord(character):04X} at position {position}"
    return None


class Fingerprinted(Protocol):
    """A request that names the values a passed dry run vouches for."""

    def fingerprint_fields(self) -> tuple[str, str, str, str]:
        """tenant_id, company_name, admin_email, subscription_plan."""
        ...


def request_fingerprint(request: Fingerprinted) -> str:
    """A stable id of the four values a dry run vouches for."""
    return hashlib.sha256("\x1f".join(request.fingerprint_fields()).encode()).hexdigest()
