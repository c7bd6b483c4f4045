"""API keys: `{tenant_id}_api_{16 url-safe characters}`, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits + "-_"
KEY_PATTERN = re.compile(r"[A-Za-z0-9_]{3,50}_api_[A-Za-z0-9_-]{16}")


def generate_api_key(tenant_id: str) -> str:
    """A fresh key for `tenant_id`, from the OS's secure random source."""
    return f"{tenant_id}_api_" + "".join(secrets.choice(_ALPHABET) for _ in range(16))


def hash_api_key(api_key: str) -> str:
    """The lookup id of a key: hex SHA-256 (keys have 96 random bits, so no salt is needed)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def presented_api_key(raw: str | None) -> str | None:
    """The key a caller presented, without the spaces and tabs around it; None when there is none.

    HTTP does not count whitespace around a field value as part of it (RFC 9110, section 5.5:
    https://www.rfc-editor.org/rfc/rfc9110#section-5.5), and servers differ in what they strip
    before the app sees it (werkzeug's keeps trailing, not leading, whitespace), so stripping
    is the only rule that holds the same over every transport.
    """
    key = (raw or "").strip(" \t")
    return key or None


def key_id(key_hash: str) -> str:
    """The name of a key an operator may see and quote: the start of its hash (never the key)."""
    return key_hash[:16]
