"""Field protection for personal data: AES-256-GCM for storage, HMAC-SHA256 for exact-match lookup.

The lookup hash is keyed so that a leaked table cannot be reversed by hashing every possible ID
number (an 18-character ID has far too little entropy for a plain hash).

`encrypt_many` and `lookup_hashes` are the bulk forms (card imports): the same output as calling
`encrypt` / `lookup_hash` per value, with the per-call overhead taken out.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
_SHA256_BLOCK = 64


class FieldCipher:
    def __init__(self, data_key: bytes, lookup_key: bytes) -> None:
        self._keys = (data_key, lookup_key)
        self._aead = AESGCM(data_key)
        # HMAC (RFC 2104) from its two keyed SHA-256 states, computed once: copying them per value is
        # ~2x cheaper than copying an hmac object, which matters at a million values.
        if len(lookup_key) > _SHA256_BLOCK:
            lookup_key = hashlib.sha256(lookup_key).digest()
        padded = lookup_key.ljust(_SHA256_BLOCK, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def __reduce__(self):
        # A process pool's initializer hands the cipher to its workers (bulk card imports): the keys
        # travel over the pool's own pipe to a child process, nowhere else.
        return FieldCipher, self._keys

    def encrypt(self, plaintext: str, *, context: bytes) -> bytes:
        """`context` (e.g. b"id_number") is bound as associated data: a ciphertext moved to another
        column does not decrypt."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), context)

    def encrypt_many(self, plaintexts: Sequence[str], *, context: bytes) -> list[bytes]:
        """`encrypt` of each value; the random nonces are drawn from the OS in one call."""
        nonces = os.urandom(NONCE_BYTES * len(plaintexts))
        seal = self._aead.encrypt
        out = []
        for start, plaintext in zip(range(0, len(nonces), NONCE_BYTES), plaintexts, strict=True):
            nonce = nonces[start : start + NONCE_BYTES]
            out.append(nonce + seal(nonce, plaintext.encode(), context))
        return out

    def decrypt(self, blob: bytes, *, context: bytes) -> str:
        return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context).decode()

    def lookup_hash(self, value: str, *, context: bytes) -> bytes:
        return self.lookup_hashes([value], context=context)[0]

    def lookup_hashes(self, values: Sequence[str], *, context: bytes) -> list[bytes]:
        """HMAC-SHA256(lookup key, context + NUL + value) of each value."""
        keyed = self._inner.copy()
        keyed.update(context + b"\x00")  # the same prefix for every value: hashed once
        inner, outer = keyed.copy, self._outer.copy
        out = []
        for value in values:
            mac = inner()
            mac.update(value.encode())
            digest = outer()
            digest.update(mac.digest())
            out.append(digest.digest())
        return out


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (token or API key): checking one costs microseconds."""
    return hashlib.sha256(secret.encode()).hexdigest()
