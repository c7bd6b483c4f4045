"""KeyManager contract: ciphertexts are bound to their associated data (the tenant id)."""

from __future__ import annotations

import pytest

from shared.ports import DecryptionFailed, KeyManager


def test_round_trip(key_manager: KeyManager) -> None:
    ciphertext = key_manager.encrypt(b"customer_123_api_secret", b"customer_123")
    assert b"secret" not in ciphertext
    assert key_manager.decrypt(ciphertext, b"customer_123") == b"customer_123_api_secret"


def test_same_plaintext_encrypts_differently(key_manager: KeyManager) -> None:
    assert key_manager.encrypt(b"x", b"t") != key_manager.encrypt(b"x", b"t")


def test_another_tenants_ciphertext_does_not_decrypt(key_manager: KeyManager) -> None:
    ciphertext = key_manager.encrypt(b"key of tenant a", b"tenant_a")
    with pytest.raises(DecryptionFailed):
        key_manager.decrypt(ciphertext, b"tenant_b")


def test_tampered_ciphertext_is_refused(key_manager: KeyManager) -> None:
    ciphertext = bytearray(key_manager.encrypt(b"payload", b"t"))
    ciphertext[-1] ^= 0x01
    with pytest.raises(DecryptionFailed):
        key_manager.decrypt(bytes(ciphertext), b"t")


def test_describe_names_no_key_material(key_manager: KeyManager) -> None:
    assert key_manager.describe()


def test_concurrent_use_from_many_threads(key_manager: KeyManager) -> None:
    """Handlers run on many threads of one instance; each round trip stays bound to its own tenant."""
    import threading

    failures: list[str] = []

    def round_trips(worker: int) -> None:
        for index in range(5):
            tenant = f"tenant_{worker}".encode()
            secret = f"secret {worker}/{index}".encode()
            if key_manager.decrypt(key_manager.encrypt(secret, tenant), tenant) != secret:
                failures.append(f"{worker}/{index}")

    threads = [threading.Thread(target=round_trips, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
