import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.bankcard import (
    generate_bank_card_number,
    luhn_check_digit,
    luhn_ok,
    mask_bank_card_number,
    normalize_bank_card_number,
)
from app.domain.errors import DomainError, ErrorCode

ICBC_19 = "6222021234567890128"
VISA_16 = "4111111111111111"


def test_luhn_vectors():
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")
    assert luhn_check_digit("622202123456789012") == "8"
    assert luhn_ok(ICBC_19)
    assert luhn_ok(VISA_16)
    assert luhn_check_digit("0") == "0"


@pytest.mark.parametrize("bad", ["", "12a", " 12", "１２", None])
def test_luhn_check_digit_needs_digits(bad):
    with pytest.raises(DomainError) as exc:
        luhn_check_digit(bad)
    assert exc.value.code == ErrorCode.BAD_BANK_CARD_NUMBER


@pytest.mark.parametrize("bad", ["", "0", "1234 5678", "411111111111111a", "４１", None, 4111111111111111])
def test_luhn_ok_is_false_for_non_numbers(bad):
    assert luhn_ok(bad) is False


def test_normalize_accepts_groups_of_four():
    assert normalize_bank_card_number("6222 0212 3456 7890 128") == ICBC_19
    assert normalize_bank_card_number(f"  {VISA_16}\n") == VISA_16
    assert normalize_bank_card_number(ICBC_19) == ICBC_19


def _error(s) -> str:
    with pytest.raises(DomainError) as exc:
        normalize_bank_card_number(s)
    assert exc.value.code == ErrorCode.BAD_BANK_CARD_NUMBER
    assert exc.value.field == "bank_card_number"
    return exc.value.message


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "6222-0212-3456-7890-128",
        "622202123456789012X",
        "６２２２０２１２３４５６７８９０１２８",
        "6222\t021234567890128",
    ],
)
def test_normalize_refuses_non_digits(bad):
    assert "digits only" in _error(bad)


@pytest.mark.parametrize("length", [12, 13, 14, 15, 20, 21])
def test_normalize_refuses_wrong_length(length):
    body = "6" * (length - 1)
    assert f"got {length}" in _error(body + luhn_check_digit(body))


def test_normalize_refuses_bad_check_digit_without_echoing():
    bad = ICBC_19[:-1] + "9"
    message = _error(bad)
    assert "Luhn" in message
    assert bad not in message and ICBC_19[:12] not in message


def test_normalize_refuses_non_string():
    assert "string" in _error(None)


def test_mask():
    assert mask_bank_card_number(ICBC_19) == "622202*********0128"
    assert mask_bank_card_number(VISA_16) == "411111******1111"
    assert mask_bank_card_number("6222 0212 3456 7890 128") == "622202*********0128"
    assert mask_bank_card_number("123456789012") == "*" * 12  # too short to show 6 + 4
    assert mask_bank_card_number("") == ""
    assert mask_bank_card_number(None) == ""  # type: ignore[arg-type]


def test_generate_refuses_bad_inputs():
    rng = random.Random(3)
    for bin_, length in (("62220a", 19), ("", 19), ("6" * 19, 19), ("622202", 15), ("622202", 20)):
        with pytest.raises(DomainError) as exc:
            generate_bank_card_number(rng, bin_, length)
        assert exc.value.code == ErrorCode.BAD_BANK_CARD_NUMBER


# --- properties -----------------------------------------------------------------------------------


def _cards():
    return st.builds(
        lambda seed, bin_, length: generate_bank_card_number(random.Random(seed), bin_, length),
        st.integers(min_value=0, max_value=2**32),
        st.sampled_from(["622202", "621700", "622848", "62148301", "4"]),
        st.integers(min_value=16, max_value=19),
    )


@given(
    st.integers(min_value=0, max_value=2**32), st.sampled_from(["622202", "62148301"]), st.integers(16, 19)
)
def test_generated_numbers_validate(seed, bin_, length):
    number = generate_bank_card_number(random.Random(seed), bin_, length)
    assert len(number) == length
    assert number.startswith(bin_)
    assert normalize_bank_card_number(number) == number


@given(_cards(), st.data())
def test_luhn_detects_every_single_digit_error(number, data):
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 1))
    shift = data.draw(st.integers(min_value=1, max_value=9))
    new = str((int(number[position]) + shift) % 10)
    mutated = number[:position] + new + number[position + 1 :]
    assert mutated != number
    assert not luhn_ok(mutated)


@given(_cards(), st.data())
def test_luhn_detects_adjacent_transpositions_except_09(number, data):
    position = data.draw(st.integers(min_value=0, max_value=len(number) - 2))
    a, b = number[position], number[position + 1]
    if a == b or {a, b} == {"0", "9"}:  # Luhn's known blind spot
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    assert not luhn_ok(swapped)


@given(_cards())
def test_mask_never_contains_the_middle(number):
    masked = mask_bank_card_number(number)
    assert len(masked) == len(number)
    assert masked[:6] == number[:6] and masked[-4:] == number[-4:]
    assert set(masked[6:-4]) == {"*"}
    assert number[6:-4] not in masked
