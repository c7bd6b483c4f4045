"""A small Cloud KMS v1 REST server for tests: Encrypt and Decrypt with AES-256-GCM and real AAD checks.

It speaks the JSON the `KeyManagementServiceClient` REST transport sends, so the adapter is
exercised over the wire. Key material is derived from the key name: test use only.

    python -m tests.fakes.kms_server --port 0 --key projects/p/locations/global/keyRings/r/cryptoKeys/k
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import google_crc32c
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY = r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/:]+"
VERSION = KEY + r"/cryptoKeyVersions/[^/:]+"
_FORMAT = b"FK1"
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 501: "UNIMPLEMENTED"}


class KmsError(Exception):
    """An error answered the way Google APIs answer: HTTP status plus a JSON error body."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _aead(key_name: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"test-kms:" + key_name.encode()).digest())


def _crc(data: bytes) -> str:
    return str(google_crc32c.value(data))


def _b64(body: dict[str, Any], field: str) -> bytes:
    return base64.b64decode(body.get(field) or "")


class FakeKms:
    """The keys this server knows; anything else is NOT_FOUND."""

    def __init__(self, keys: set[str]) -> None:
        self.keys = set(keys)

    def _key(self, name: str) -> str:
        match = re.match(KEY, name)
        if match is None or match.group(0) not in self.keys:
            raise KmsError(404, f"{name} not found.")
        return match.group(0)

    def encrypt(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Encrypt: bind the ciphertext to additionalAuthenticatedData."""
        key = self._key(name)
        plaintext, aad = _b64(body, "plaintext"), _b64(body, "additionalAuthenticatedData")
        if len(plaintext) > 64 * 1024:
            raise KmsError(400, "The plaintext exceeds the maximum size of 65536 bytes.")
        if "plaintextCrc32c" in body and str(body["plaintextCrc32c"]) != _crc(plaintext):
            raise KmsError(400, "The checksum in field plaintext_crc32c did not match the data in field plaintext.")
        nonce = os.urandom(12)
        ciphertext = _FORMAT + nonce + _aead(key).encrypt(nonce, plaintext, aad)
        return {
            "name": f"{key}/cryptoKeyVersions/1",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "ciphertextCrc32c": _crc(ciphertext),
            "verifiedPlaintextCrc32c": "plaintextCrc32c" in body,
            "verifiedAdditionalAuthenticatedDataCrc32c": "additionalAuthenticatedDataCrc32c" in body,
            "protectionLevel": "SOFTWARE",
        }

    def decrypt(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Decrypt: fails with 400 when the ciphertext or the AAD does not match, as Cloud KMS does."""
        key = self._key(name)
        ciphertext, aad = _b64(body, "ciphertext"), _b64(body, "additionalAuthenticatedData")
        try:
            if ciphertext[:3] != _FORMAT:
                raise InvalidTag
            plaintext = _aead(key).decrypt(ciphertext[3:15], ciphertext[15:], aad)
        except (InvalidTag, ValueError) as error:
            raise KmsError(400, "Decryption failed: the ciphertext is invalid.") from error
        return {"plaintext": base64.b64encode(plaintext).decode(), "plaintextCrc32c": _crc(plaintext), "usedPrimary": True}


def _handler(kms: FakeKms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, {"status": "ok"})
            else:
                self._send(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

        def do_POST(self) -> None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else {}
                if match := re.fullmatch(rf"/v1/({KEY}|{VERSION}):encrypt", path):
                    self._send(200, kms.encrypt(match.group(1), body))
                elif match := re.fullmatch(rf"/v1/({KEY}):decrypt", path):
                    self._send(200, kms.decrypt(match.group(1), body))
                else:
                    raise KmsError(501, f"POST {path} is not implemented by the test server")
            except KmsError as error:
                self._send(error.code, {"error": {"code": error.code, "message": error.message, "status": _STATUS[error.code]}})

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read results, not access logs."""

    return Handler


class KmsServer:
    """The server on a background thread; `url` is the client's api_endpoint."""

    def __init__(self, keys: set[str], host: str = "127.0.0.1", port: int = 0) -> None:
        self.kms = FakeKms(keys)
        self._server = ThreadingHTTPServer((host, port), _handler(self.kms))
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-kms", daemon=True)

    def start(self) -> KmsServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    """Run as a process (for `make emulate`); prints the URL once listening."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", action="append", default=[], required=True)
    args = parser.parse_args()
    server = KmsServer(set(args.key), args.host, args.port)
    print(f"test KMS listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
