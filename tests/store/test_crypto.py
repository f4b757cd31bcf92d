import pytest
from cryptography.exceptions import InvalidTag

from app.store.crypto import FieldCipher, secret_hash

KEY_A, KEY_B = b"a" * 32, b"b" * 32
ID = "11010519491231002X"


def test_round_trip_and_fresh_nonce():
    cipher = FieldCipher(KEY_A, KEY_B)
    one, two = cipher.encrypt(ID, context=b"id_number"), cipher.encrypt(ID, context=b"id_number")
    assert one != two  # a new nonce each time: equal numbers do not show as equal ciphertexts
    assert ID.encode() not in one
    assert cipher.decrypt(one, context=b"id_number") == ID


def test_ciphertext_is_bound_to_its_column():
    cipher = FieldCipher(KEY_A, KEY_B)
    blob = cipher.encrypt(ID, context=b"id_number")
    with pytest.raises(InvalidTag):
        cipher.decrypt(blob, context=b"bank_card")


def test_lookup_hash_is_deterministic_and_keyed():
    a, b = FieldCipher(KEY_A, KEY_B), FieldCipher(KEY_A, KEY_A)
    assert a.lookup_hash(ID, context=b"id_number") == a.lookup_hash(ID, context=b"id_number")
    assert a.lookup_hash(ID, context=b"id_number") != b.lookup_hash(ID, context=b"id_number")
    assert a.lookup_hash(ID, context=b"id_number") != a.lookup_hash(ID, context=b"bank_card")


def test_secret_hash_is_sha256_hex():
    assert secret_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_lookup_hash_is_hmac_sha256_of_context_and_value():
    import hashlib
    import hmac

    expected = hmac.new(KEY_B, b"id_number\x00" + ID.encode(), hashlib.sha256).digest()
    assert FieldCipher(KEY_A, KEY_B).lookup_hash(ID, context=b"id_number") == expected
