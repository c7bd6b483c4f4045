"""Cursor pagination of list routes: `limit` and `page_token` in, `next_page_token` out.

A page token is opaque to clients: the position of the last document returned, bound to
the listing it came from (its route and filters), so a token is never read against another
listing. A token that does not decode, or belongs to another listing, is a 422.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from shared.domain.errors import InvalidRequest
from shared.ports import PageCursor

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_MAX_TOKEN_CHARS = 2000


def page_size(raw: str | int | None, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """`limit` as a whole number from 1 to `maximum`; `default` when absent."""
    if raw is None:
        return default
    text = str(raw) if isinstance(raw, int) else raw
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= maximum:
        raise InvalidRequest(f"limit must be a whole number from 1 to {maximum}", field="limit")
    return int(text)


def _listing(listing: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()[:16]


def encode_page_token(cursor: PageCursor | None, listing: dict[str, Any]) -> str | None:
    """The token of the page after `cursor` in `listing`; None when there is no next page."""
    if cursor is None:
        return None
    raw = json.dumps({"l": _listing(listing), "v": cursor.value, "i": cursor.doc_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str | None, listing: dict[str, Any]) -> PageCursor | None:
    """The cursor a token stands for; InvalidRequest for a token this listing did not hand out."""
    if token is None:
        return None
    refused = InvalidRequest("page_token is not a token of this listing: pass next_page_token as it was returned", field="page_token")
    if not token or len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise refused
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise refused from None
    if not isinstance(decoded, dict) or set(decoded) != {"l", "v", "i"} or decoded["l"] != _listing(listing):
        raise refused
    value, doc_id = decoded["v"], decoded["i"]
    if not isinstance(doc_id, str) or not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise refused
    return PageCursor(value=value, doc_id=doc_id)
