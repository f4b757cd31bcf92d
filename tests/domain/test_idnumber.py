import random
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.errors import DomainError, ErrorCode
from app.domain.idnumber import (
    MIN_BIRTH_DATE,
    birth_date_of,
    generate_id_number,
    id_check_char,
    is_valid_id_number,
    mask_id_number,
    normalize_id_number,
)
from app.domain.regions import PROVINCE_PREFIXES

BEIJING = "11010519491231002X"
SHANTOU = "440524188001010014"
TODAY = date(2025, 6, 1)


def with_check(first17: str) -> str:
    return first17 + id_check_char(first17)


def test_known_good_numbers():
    assert normalize_id_number(BEIJING) == BEIJING
    assert normalize_id_number(SHANTOU) == SHANTOU
    assert is_valid_id_number(BEIJING) and is_valid_id_number(SHANTOU)
    assert birth_date_of(BEIJING) == date(1949, 12, 31)
    assert birth_date_of(SHANTOU) == date(1880, 1, 1)


def test_check_char_vectors():
    assert id_check_char(BEIJING[:17]) == "X"
    assert id_check_char(SHANTOU[:17]) == "4"
    # weights sum for all zeros is 0 -> remainder 0 -> '1'
    assert id_check_char("0" * 17) == "1"


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_char_is_iso_7064_mod_11_2(first17):
    # Independent statement of the standard: weights 2**(17-i) mod 11, and the full 18-character
    # sum (check character weighted 1, X = 10) is congruent to 1 mod 11.
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (1 - total) % 11
    assert id_check_char(first17) == ("X" if value == 10 else str(value))


def test_check_char_covers_every_remainder():
    seen = {id_check_char(f"{n:017d}") for n in range(200)}
    assert seen == set("0123456789X")


@pytest.mark.parametrize("bad", ["", "1" * 16, "1" * 18, "1101051949123100X", None])
def test_check_char_needs_17_digits(bad):
    with pytest.raises(DomainError) as exc:
        id_check_char(bad)
    assert exc.value.code == ErrorCode.BAD_ID_NUMBER


def test_lower_case_x_and_surrounding_whitespace_are_normalised():
    assert normalize_id_number(BEIJING.lower()) == BEIJING
    assert normalize_id_number(f"  {BEIJING}\n") == BEIJING
    assert is_valid_id_number(BEIJING.lower())


def _error(s: str, today: date | None = TODAY) -> DomainError:
    with pytest.raises(DomainError) as exc:
        normalize_id_number(s, today)
    assert exc.value.code == ErrorCode.BAD_ID_NUMBER
    assert exc.value.field == "id_number"
    assert not is_valid_id_number(s, today)
    return exc.value


@pytest.mark.parametrize("bad", ["", "1101051949123100", BEIJING[:17], BEIJING + "1", "11010519491231002X0"])
def test_wrong_length(bad):
    assert "18 characters" in _error(bad).message


@pytest.mark.parametrize(
    "bad",
    [
        "11010519491231002Y",
        "1101051949123100XX",
        "X10105194912310021",
        "11010519491231 02X",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width
        "11010519491231002-",
    ],
)
def test_bad_characters(bad):
    assert "characters" in _error(bad).message


@pytest.mark.parametrize(
    "prefix",
    [
        "00",
        "10",
        "16",
        "20",
        "24",
        "30",
        "38",
        "40",
        "47",
        "49",
        "55",
        "60",
        "66",
        "70",
        "72",
        "80",
        "83",
        "99",
    ],
)
def test_bad_region(prefix):
    assert "region" in _error(with_check(prefix + "010519491231002")).message


@pytest.mark.parametrize(
    "birth",
    ["19490231", "19491301", "19490001", "19491200", "19490229", "21000229", "00000101", "19491232"],
)
def test_birth_date_not_a_calendar_date(birth):
    assert "not a calendar date" in _error(with_check("110105" + birth + "002")).message


def test_leap_day_accepted():
    assert is_valid_id_number(with_check("11010520000229002"), TODAY)


def test_birth_date_bounds():
    assert "before 1850-01-01" in _error(with_check("11010518491231002")).message
    assert is_valid_id_number(with_check("11010518500101002"), TODAY)
    tomorrow = TODAY + timedelta(days=1)
    assert "future" in _error(with_check("110105" + tomorrow.strftime("%Y%m%d") + "002")).message
    assert is_valid_id_number(with_check("110105" + TODAY.strftime("%Y%m%d") + "002"), TODAY)


def test_birth_date_in_future_against_real_clock():
    future = date.today() + timedelta(days=400)
    assert "future" in _error(with_check("110105" + future.strftime("%Y%m%d") + "002"), today=None).message


def test_wrong_check_character():
    assert "check character" in _error(BEIJING[:17] + "1").message
    assert "check character" in _error(SHANTOU[:17] + "X").message


def test_non_string():
    assert "string" in _error(None).message  # type: ignore[arg-type]


def test_error_messages_never_contain_the_number():
    for bad in (BEIJING[:17] + "1", BEIJING[:17] + "Y", BEIJING[:6] + "19491331" + "002X"):
        message = _error(bad).message
        assert bad[:17] not in message
        assert bad[6:14] not in message


def test_mask():
    assert mask_id_number(BEIJING) == "1101**********002X"
    assert mask_id_number(SHANTOU) == "4405**********0014"
    assert mask_id_number("44010619900101123X") == "4401**********123X"
    assert mask_id_number(" " + BEIJING + " ") == "1101**********002X"
    # not 18 characters: masked entirely, never revealed
    assert mask_id_number("12345678") == "********"
    assert mask_id_number(BEIJING[:17]) == "*" * 17
    assert mask_id_number("") == ""
    assert mask_id_number(None) == ""  # type: ignore[arg-type]


def test_birth_date_of_validates():
    with pytest.raises(DomainError) as exc:
        birth_date_of(BEIJING[:17] + "1")
    assert exc.value.code == ErrorCode.BAD_ID_NUMBER


def test_generate_refuses_bad_inputs():
    rng = random.Random(1)
    with pytest.raises(DomainError) as exc:
        generate_id_number(rng, "100105", date(1990, 1, 1))
    assert exc.value.code == ErrorCode.BAD_REGION_CODE
    with pytest.raises(DomainError) as exc:
        generate_id_number(rng, "110105", date(1849, 12, 31))
    assert exc.value.code == ErrorCode.BAD_ID_NUMBER
    with pytest.raises(DomainError) as exc:
        generate_id_number(rng, "110105", TODAY + timedelta(days=1), today=TODAY)
    assert exc.value.code == ErrorCode.BAD_ID_NUMBER


def test_generate_is_deterministic_for_a_seed():
    a = generate_id_number(random.Random(7), "440106", date(1990, 5, 17))
    b = generate_id_number(random.Random(7), "440106", date(1990, 5, 17))
    assert a == b
    assert a.startswith("44010619900517")


# --- properties -----------------------------------------------------------------------------------

_regions = st.builds(
    lambda p, rest: p + rest,
    st.sampled_from(sorted(PROVINCE_PREFIXES)),
    st.sampled_from(["0000", "0100", "0106", "9004", "2301"]),
)
_births = st.dates(min_value=MIN_BIRTH_DATE, max_value=TODAY)


@given(st.integers(min_value=0, max_value=2**32), _regions, _births)
def test_generated_numbers_always_validate(seed, region, birth):
    number = generate_id_number(random.Random(seed), region, birth, today=TODAY)
    assert normalize_id_number(number, TODAY) == number
    assert birth_date_of(number) == birth
    assert number[:6] == region


def _valid_numbers():
    return st.builds(
        lambda seed, region, birth: generate_id_number(random.Random(seed), region, birth, today=TODAY),
        st.integers(min_value=0, max_value=2**32),
        _regions,
        _births,
    )


@given(_valid_numbers(), st.integers(min_value=0, max_value=17), st.integers(min_value=1, max_value=10))
def test_any_single_character_change_is_rejected(number, position, shift):
    # MOD 11-2 detects every single substitution. Replace one character by another of the
    # allowed alphabet at that position (digits; digits or X for the check character).
    alphabet = "0123456789X" if position == 17 else "0123456789"
    old = alphabet.index(number[position])
    new = alphabet[(old + shift) % len(alphabet)]
    if new == number[position]:
        new = alphabet[(old + 1) % len(alphabet)]
    mutated = number[:position] + new + number[position + 1 :]
    assert mutated != number
    assert not is_valid_id_number(mutated, TODAY)


@given(_valid_numbers())
def test_mask_never_reveals_the_middle(number):
    masked = mask_id_number(number)
    assert len(masked) == 18
    assert masked[4:14] == "*" * 10
    assert number[4:14] not in masked
    assert masked != number


@given(st.text(max_size=30))
def test_normalize_only_raises_domain_errors(s):
    try:
        result = normalize_id_number(s, TODAY)
    except DomainError as err:
        assert err.code == ErrorCode.BAD_ID_NUMBER
    else:
        assert len(result) == 18


@given(st.text(alphabet="0123456789Xx ", min_size=8, max_size=22))
def test_error_messages_never_echo_digit_input(s):
    # Messages contain no digit run longer than 4, so any 8+ character input would show up.
    try:
        normalize_id_number(s, TODAY)
    except DomainError as err:
        if len(s.strip()) >= 8:
            assert s.strip()[:8] not in err.message
