"""Field protection for personal data: AES-256-GCM for storage, HMAC-SHA256 for exact-match lookup.

The lookup hash is keyed so that a leaked table cannot be reversed by hashing every possible ID
number (an 18-character ID has far too little entropy for a plain hash).

`encrypt_many` and `lookup_hashes` are the bulk forms (card imports): the same output as calling
`encrypt` / `lookup_hash` per value, with the per-call overhead taken out.

Keys rotate without downtime (docs/operations.md, Key rotation): a cipher also holds the keys being
retired. It always encrypts and hashes with the current keys; it decrypts with whichever of its
data keys sealed a value, and a lookup tries the previous lookup key's hash too while `ssc
key-rotation rewrap` moves the stored values to the current keys.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
_SHA256_BLOCK = 64


def _hmac_states(lookup_key: bytes) -> tuple:
    """HMAC (RFC 2104) as its two keyed SHA-256 states, computed once: copying them per value is ~2x
    cheaper than copying an hmac object, which matters at a million values."""
    if len(lookup_key) > _SHA256_BLOCK:
        lookup_key = hashlib.sha256(lookup_key).digest()
    padded = lookup_key.ljust(_SHA256_BLOCK, b"\x00")
    return hashlib.sha256(bytes(b ^ 0x36 for b in padded)), hashlib.sha256(bytes(b ^ 0x5C for b in padded))


def _macs(states: tuple, values: Sequence[str], context: bytes) -> list[bytes]:
    inner_state, outer_state = states
    keyed = inner_state.copy()
    keyed.update(context + b"\x00")  # the same prefix for every value: hashed once
    inner, outer = keyed.copy, outer_state.copy
    out = []
    for value in values:
        mac = inner()
        mac.update(value.encode())
        digest = outer()
        digest.update(mac.digest())
        out.append(digest.digest())
    return out


class FieldCipher:
    def __init__(
        self,
        data_key: bytes,
        lookup_key: bytes,
        *,
        previous_data_keys: Sequence[bytes] = (),
        previous_lookup_key: bytes | None = None,
    ) -> None:
        self._keys = (data_key, lookup_key, tuple(previous_data_keys), previous_lookup_key)
        self._aead = AESGCM(data_key)
        self._retired = [AESGCM(key) for key in previous_data_keys if key != data_key]
        self._hmac = _hmac_states(lookup_key)
        self._previous_hmac = (
            _hmac_states(previous_lookup_key)
            if previous_lookup_key is not None and previous_lookup_key != lookup_key
            else None
        )

    def __reduce__(self):
        # A process pool's initializer hands the cipher to its workers (bulk card imports): the keys
        # travel over the pool's own pipe to a child process, nowhere else.
        return _rebuilt, self._keys

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
        """The clear value, under whichever data key sealed it (the current one first)."""
        return self.opened(blob, context=context)[0]

    def opened(self, blob: bytes, *, context: bytes) -> tuple[str, bool]:
        """The clear value, and whether it is sealed under the current data key. Raises InvalidTag
        when none of the keys sealed it (or it was altered)."""
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, context).decode(), True
        except InvalidTag:
            for aead in self._retired:
                try:
                    return aead.decrypt(nonce, sealed, context).decode(), False
                except InvalidTag:
                    continue
            raise

    def lookup_hash(self, value: str, *, context: bytes) -> bytes:
        return self.lookup_hashes([value], context=context)[0]

    def lookup_hashes(self, values: Sequence[str], *, context: bytes) -> list[bytes]:
        """HMAC-SHA256(lookup key, context + NUL + value) of each value."""
        return _macs(self._hmac, values, context)

    def lookup_candidates(self, value: str, *, context: bytes) -> tuple[bytes, ...]:
        """The hashes a stored value may carry: under the current lookup key, and while a rotation is
        under way under the previous one too."""
        current = _macs(self._hmac, [value], context)[0]
        if self._previous_hmac is None:
            return (current,)
        return current, _macs(self._previous_hmac, [value], context)[0]


def _rebuilt(data_key, lookup_key, previous_data_keys, previous_lookup_key) -> FieldCipher:
    return FieldCipher(
        data_key, lookup_key, previous_data_keys=previous_data_keys, previous_lookup_key=previous_lookup_key
    )


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (token or API key): checking one costs microseconds."""
    return hashlib.sha256(secret.encode()).hexdigest()


def field_cipher(settings) -> FieldCipher:
    """The cipher of these settings: the current keys, and those being retired (app.settings)."""
    # Here, not at the top: the card import's worker processes import this module and need no
    # settings machinery.
    from app.settings import resolve_keys, resolve_previous_keys

    data_key, lookup_key = resolve_keys(settings)
    previous_data, previous_lookup = resolve_previous_keys(settings)
    return FieldCipher(
        data_key, lookup_key, previous_data_keys=previous_data, previous_lookup_key=previous_lookup
    )
