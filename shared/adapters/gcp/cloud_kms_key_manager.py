"""CloudKmsKeyManager: the KeyManager port on Cloud KMS symmetric keys, AAD = associated data."""

from __future__ import annotations

import google_crc32c
from google.api_core import exceptions as google_errors
from google.cloud import kms

from shared.adapters.gcp.errors import google_errors_as_ours
from shared.ports import BackendError, DecryptionFailed, KeyManager

_TIMEOUT_SECONDS = 15.0


def _crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


class CloudKmsKeyManager(KeyManager):
    """Encrypts with one CryptoKey (its primary version); checksums guard both directions."""

    def __init__(self, client: kms.KeyManagementServiceClient, key_name: str) -> None:
        if "/cryptoKeys/" not in key_name:
            raise ValueError("key_name must be projects/P/locations/L/keyRings/R/cryptoKeys/K")
        self._client = client
        self._key_name = key_name

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        with google_errors_as_ours("kms encrypt"):
            response = self._client.encrypt(
                request={
                    "name": self._key_name,
                    "plaintext": plaintext,
                    "plaintext_crc32c": _crc32c(plaintext),
                    "additional_authenticated_data": associated_data,
                    "additional_authenticated_data_crc32c": _crc32c(associated_data),
                },
                timeout=_TIMEOUT_SECONDS,
            )
        ciphertext = bytes(response.ciphertext)
        if not response.verified_plaintext_crc32c or not response.verified_additional_authenticated_data_crc32c:
            raise BackendError("kms encrypt: the request was corrupted in transit")
        if response.ciphertext_crc32c and int(response.ciphertext_crc32c) != _crc32c(ciphertext):
            raise BackendError("kms encrypt: the response was corrupted in transit")
        return ciphertext

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        with google_errors_as_ours("kms decrypt"):
            try:
                response = self._client.decrypt(
                    request={
                        "name": self._key_name,
                        "ciphertext": ciphertext,
                        "ciphertext_crc32c": _crc32c(ciphertext),
                        "additional_authenticated_data": associated_data,
                        "additional_authenticated_data_crc32c": _crc32c(associated_data),
                    },
                    timeout=_TIMEOUT_SECONDS,
                )
            except google_errors.BadRequest as error:
                # KMS answers 400 INVALID_ARGUMENT when the ciphertext or the AAD does not match.
                raise DecryptionFailed("ciphertext does not match this key and associated data") from error
        plaintext = bytes(response.plaintext)
        if response.plaintext_crc32c and int(response.plaintext_crc32c) != _crc32c(plaintext):
            raise BackendError("kms decrypt: the response was corrupted in transit")
        return plaintext

    def describe(self) -> str:
        return f"Cloud KMS key {self._key_name}"
