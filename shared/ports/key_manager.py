"""KeyManager port: authenticated encryption bound to associated data (Cloud KMS semantics)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class KeyManager(ABC):
    """Encrypts small secrets; a ciphertext only decrypts with the same associated data."""

    @abstractmethod
    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Ciphertext of `plaintext`, bound to `associated_data`."""

    @abstractmethod
    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Plaintext; raises DecryptionFailed if the data or the ciphertext do not match."""

    @abstractmethod
    def describe(self) -> str:
        """Which key is in use, for operators (never key material)."""
