"""KeyManager port: authenticated encryption bound to associated data (Cloud KMS semantics)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from shared.ports.permissions import KMS_IAM, key_use, nothing, requires


class KeyManager(ABC):
    """Encrypts small secrets; a ciphertext only decrypts with the same associated data."""

    @requires(KMS_IAM, key_use("cloudkms.cryptoKeyVersions.useToEncrypt"))
    @abstractmethod
    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """Ciphertext of `plaintext`, bound to `associated_data`."""

    @requires(KMS_IAM, key_use("cloudkms.cryptoKeyVersions.useToDecrypt"))
    @abstractmethod
    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Plaintext; raises DecryptionFailed if the data or the ciphertext do not match."""

    @requires(KMS_IAM, nothing)  # the configured key name, no API call
    @abstractmethod
    def describe(self) -> str:
        """Which key is in use, for operators (never key material)."""
