"""LocalKeyManager: AES-256-GCM with a key file in the data directory; development only."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.ports import DecryptionFailed, KeyManager

_FORMAT = b"\x01"
_NONCE_BYTES = 12


class LocalKeyManager(KeyManager):
    """Encrypts with a 256-bit key kept in `key_path` (created with mode 0600 if missing)."""

    def __init__(self, key_path: Path, *, production: bool) -> None:
        if production:
            raise RuntimeError("the local key manager is refused in production; configure Cloud KMS")
        self._key_path = key_path
        self._aead = AESGCM(self._load_or_create(key_path))

    @staticmethod
    def _load_or_create(path: Path) -> bytes:
        if path.exists():
            key = path.read_bytes()
            if len(key) != 32:
                raise RuntimeError(f"{path} is not a 256-bit key")
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = AESGCM.generate_key(bit_length=256)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        if len(ciphertext) <= 1 + _NONCE_BYTES or ciphertext[:1] != _FORMAT:
            raise DecryptionFailed("not a ciphertext of this key manager")
        nonce, body = ciphertext[1 : 1 + _NONCE_BYTES], ciphertext[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, associated_data)
        except InvalidTag as error:
            raise DecryptionFailed("ciphertext does not match this key and associated data") from error

    def describe(self) -> str:
        return f"local AES-256-GCM key file {self._key_path.name}"
