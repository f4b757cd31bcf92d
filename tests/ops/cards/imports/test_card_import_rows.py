"""Preparing card rows without a database: the fast path (canonical blocks, checked column by
column) gives what the exact path (csv.reader, record by record) gives; the bulk helpers it rests on
(domain checks, crypto, packing) agree with their one-value forms."""

import hashlib
import hmac
import pickle
import random
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.bankcard import (
    all_canonical_bank_card_numbers,
    generate_bank_card_number,
    mask_bank_card_number,
    mask_canonical_bank_card_numbers,
    normalize_bank_card_number,
)
from app.domain.errors import DomainError
from app.domain.idnumber import (
    all_canonical_id_numbers,
    generate_id_number,
    mask_canonical_id_numbers,
    mask_id_number,
    normalize_id_number,
)
from app.ops.cards.imports.rows import BLOB_COLUMNS, CARD_COLUMNS, RowPreparer, number_claim
from app.ops.demo.generate import CARD_CSV_COLUMNS
from app.store.bulk import pack_rows, unpack_rows
from app.store.crypto import FieldCipher
from tests.ops.cards.imports.card_files import CIPHER

TENANTS = {"cn/440000/440100": 7, "cn/440000/440300": 9}


def _record(n: int, rng: random.Random) -> list[str]:
    tenant = "cn/440000/440100" if n % 2 else "cn/440000/440300"
    id_number = generate_id_number(rng, tenant[-6:], date(1980 + n % 30, 1 + n % 12, 1 + n % 28))
    return [
        tenant,
        f"D{n:08d}",
        f"S{n:031d}",
        id_number,
        "王芳" if n % 3 else "",
        "102",
        generate_bank_card_number(rng, "621226") if n % 4 else "",
    ]


def _text(records: list[list[str]], quote: bool = False) -> bytes:
    cell = (lambda v: '"' + v.replace('"', '""') + '"') if quote else (lambda v: v)
    return "".join(",".join(cell(v) for v in r) + "\r\n" for r in records).encode()


def _readable(block) -> list[tuple]:
    """Every column of every packed row, ciphertexts decrypted (their nonces differ)."""
    rows = unpack_rows(block.packed, CARD_COLUMNS, range(len(block.lines)))
    out = []
    for row in rows:
        values = dict(zip(CARD_COLUMNS, row, strict=True))
        values["id_number_enc"] = CIPHER.decrypt(values["id_number_enc"], context=b"id_number")
        if values["bank_card_enc"] is not None:
            values["bank_card_enc"] = CIPHER.decrypt(values["bank_card_enc"], context=b"bank_card")
        out.append(tuple(values.values()))
    return out


def test_fast_and_exact_paths_prepare_the_same_rows():
    records = [_record(n, random.Random(n)) for n in range(1, 60)]
    preparer = RowPreparer(CARD_CSV_COLUMNS, TENANTS, CIPHER)
    fast = preparer.prepare(10, _text(records))
    exact = preparer.prepare(10, _text(records, quote=True))  # quotes: the exact path
    assert fast.lines == range(10, 69)  # a range: the fast path ran
    assert exact.lines == list(range(10, 69))
    assert fast.problems == exact.problems == []
    assert fast.numbers == exact.numbers == [number_claim(TENANTS[r[0]], r[1]) for r in records]
    assert list(fast.serials) == list(exact.serials) == [r[2] for r in records]
    assert _readable(fast) == _readable(exact)
    row = _readable(fast)[11]  # record 12: no bank card, no holder name
    assert (row[6], row[7], row[8], row[10]) == (None, None, None, None)
    assert row[3] == records[11][3] and row[4] == CIPHER.lookup_hash(records[11][3], context=b"id_number")


def test_a_refused_record_keeps_its_claims_and_gets_the_exact_messages():
    records = [_record(n, random.Random(n)) for n in range(1, 6)]
    records[1][3] = records[1][3][:17] + ("0" if records[1][3][17] != "0" else "1")  # check character
    records[2][0] = "cn/999999"
    records[3][3] = "11010519491231002x"  # a lower-case x is fine, just not canonical
    block = RowPreparer(CARD_CSV_COLUMNS, TENANTS, CIPHER).prepare(2, _text(records))
    assert block.lines == [2, 3, 4, 5, 6]
    assert [(i, str(p)) for i, p in block.problems] == [
        (1, "line 3: id_number: ID number check character does not match (ISO 7064 MOD 11-2)"),
        (2, "line 4: issuing_tenant: unknown tenant 'cn/999999'"),
    ]
    assert block.numbers[1] == number_claim(TENANTS[records[1][0]], records[1][1]) and block.numbers[2] == ""
    assert block.serials[2] == records[2][2]
    travelled = pickle.loads(pickle.dumps(block))  # how blocks come back from worker processes
    assert (travelled.lines, travelled.numbers, travelled.serials) == (
        block.lines,
        block.numbers,
        block.serials,
    )
    assert travelled.problems == block.problems and travelled.packed == block.packed
    packed = unpack_rows(block.packed, ["card_number", "id_number_enc"], range(5))
    assert [number for number, _ in packed] == [records[0][1], records[3][1], records[4][1]]
    assert CIPHER.decrypt(packed[1][1], context=b"id_number") == "11010519491231002X"


def test_bulk_crypto_matches_the_single_value_forms():
    values = ["11010519491231002X", "440524188001010014", ""]
    encrypted = CIPHER.encrypt_many(values, context=b"id_number")
    assert [CIPHER.decrypt(blob, context=b"id_number") for blob in encrypted] == values
    assert len({blob[:12] for blob in encrypted}) == 3  # a fresh nonce each
    expected = [hmac.new(b"l" * 32, b"id_number\x00" + v.encode(), hashlib.sha256).digest() for v in values]
    assert CIPHER.lookup_hashes(values, context=b"id_number") == expected
    assert [CIPHER.lookup_hash(v, context=b"id_number") for v in values] == expected
    long_key = FieldCipher(b"k" * 32, b"m" * 100)  # keys beyond a SHA-256 block are hashed first
    assert long_key.lookup_hash("x", context=b"c") == hmac.new(b"m" * 100, b"c\x00x", hashlib.sha256).digest()


def _canonical(normalize, value: str) -> bool:
    try:
        return normalize(value) == value
    except DomainError:
        return False


ID_LIKE = st.one_of(
    st.builds(
        lambda seed, birth: generate_id_number(random.Random(seed), "440106", birth),
        st.integers(0, 2**32),
        st.dates(date(1850, 1, 1), date(2020, 1, 1)),
    ),
    st.text(alphabet="0123456789Xx ", min_size=16, max_size=19),
    st.from_regex(r"44010619[0-9]{6}[0-9]{3}[0-9Xx]", fullmatch=True),
)


@given(ID_LIKE)
def test_bulk_id_check_is_normalize_without_changes(value):
    assert all_canonical_id_numbers([value]) == _canonical(normalize_id_number, value)


@given(
    st.one_of(st.from_regex(r"6[0-9]{15,18}", fullmatch=True), st.text(alphabet="0123456789 ", max_size=21))
)
def test_bulk_bank_card_check_is_normalize_without_changes(value):
    assert all_canonical_bank_card_numbers([value]) == _canonical(normalize_bank_card_number, value)


@given(st.integers(0, 2**32), st.integers(16, 19))
def test_bulk_masks_of_canonical_numbers_are_the_masks(seed, length):
    rng = random.Random(seed)
    id_number = generate_id_number(rng, "440106", date(1990, 1, 1) + timedelta(days=seed % 9000))
    bank_card = generate_bank_card_number(rng, "621226", length)
    assert mask_canonical_id_numbers([id_number]) == [mask_id_number(id_number)]
    assert mask_canonical_bank_card_numbers([bank_card]) == [mask_bank_card_number(bank_card)]


def test_bulk_checks_need_every_value():
    good = generate_id_number(random.Random(1), "440106", date(1990, 1, 1))
    assert all_canonical_id_numbers([good, good]) and not all_canonical_id_numbers([good, good.lower() + "1"])
    future = generate_id_number(random.Random(1), "440106", date(2024, 5, 1))
    assert not all_canonical_id_numbers([future], today=date(2024, 4, 30))
    assert all_canonical_bank_card_numbers([]) and not all_canonical_bank_card_numbers(
        ["6222021234567890128", "1"]
    )


@pytest.mark.parametrize("rowids", [range(3), [0, 4, 9]])
def test_packed_rows_come_back_as_given(rowids):
    columns = {
        "name": ["a", None, "çé"],
        "count": [1, 2, None],
        "code": ["AB", "CD", "EF"],  # one width, ASCII: travels joined
        "wide": ["çé", "ab", "cd"],  # not ASCII: stays a column
        "fixed": [b"\x00" * 4, b"abcd", b"\xff" * 4],
        "varied": [b"", None, b"xyz"],
    }
    packed = pack_rows(rowids, columns, ["fixed", "varied"])
    assert {b.column for b in packed.blobs} == {"code", "fixed", "varied"}
    rows = unpack_rows(packed, ["varied", "name", "code", "fixed", "count", "wide"], range(0, 10))
    assert rows == [
        (b"", "a", "AB", b"\x00" * 4, 1, "çé"),
        (None, None, "CD", b"abcd", 2, "ab"),
        (b"xyz", "çé", "EF", b"\xff" * 4, None, "cd"),
    ]
    last = list(rowids)[-1]
    assert unpack_rows(packed, ["code", "name"], range(last, last + 1)) == [("EF", "çé")]
    assert set(BLOB_COLUMNS) <= set(CARD_COLUMNS)
