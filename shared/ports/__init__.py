"""Ports: the small interfaces the domain talks to; adapters implement them per backend."""

from shared.ports.authenticator import Operator, OperatorAuthenticator
from shared.ports.document_store import EXPIRE_AT, Document, DocumentStore, Page, PageCursor, Transaction
from shared.ports.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    DecryptionFailed,
    NotFound,
    RateLimited,
    TransactionConflict,
)
from shared.ports.event_bus import EventBus
from shared.ports.key_manager import KeyManager
from shared.ports.warehouse import Row, Warehouse

__all__ = [
    "EXPIRE_AT",
    "AlreadyExists",
    "BackendError",
    "BackendUnavailable",
    "DecryptionFailed",
    "Document",
    "DocumentStore",
    "EventBus",
    "KeyManager",
    "NotFound",
    "Operator",
    "OperatorAuthenticator",
    "Page",
    "PageCursor",
    "RateLimited",
    "Row",
    "Transaction",
    "TransactionConflict",
    "Warehouse",
]
