"""Field protection for personal data: AES-256-GCM for storage, HMAC-SHA256 for exact-match lookup.

The lookup hash is keyed so that a leaked table cannot be reversed by hashing every possible ID
number (an 18-character ID has far too little entropy for a plain hash).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class FieldCipher:
    def __init__(self, data_key: bytes, lookup_key: bytes) -> None:
        self._aead = AESGCM(data_key)
        # Keyed once; copying the keyed state is ~3x cheaper than hmac.new per value (bulk imports).
        self._lookup = hmac.new(lookup_key, digestmod=hashlib.sha256)

    def encrypt(self, plaintext: str, *, context: bytes) -> bytes:
        """`context` (e.g. b"id_number") is bound as associated data: a ciphertext moved to another
        column does not decrypt."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context)

    def decrypt(self, blob: bytes, *, context: bytes) -> str:
        return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context).decode()

    def lookup_hash(self, value: str, *, context: bytes) -> bytes:
        mac = self._lookup.copy()
        mac.update(context + b"\x00" + value.encode())
        return mac.digest()


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (token or API key): checking one costs microseconds."""
    return hashlib.sha256(secret.encode()).hexdigest()
