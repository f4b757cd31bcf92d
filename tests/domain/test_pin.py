from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.errors import DomainError, ErrorCode
from app.domain.pin import validate_new_pin


@pytest.mark.parametrize(
    "pin", ["135790", "246813", "102938", "124578", "000001", "987653", "890123", "012346"]
)
def test_good_pins(pin):
    assert validate_new_pin(pin) == pin


@pytest.mark.parametrize(
    "pin",
    ["", "12345", "1234567", "12a456", " 13579", "135790 ", "１３５７９０", "٤٤٤٣٣٣", None, 135790, "13 579"],
)
def test_bad_pins(pin):
    with pytest.raises(DomainError) as exc:
        validate_new_pin(pin)
    assert exc.value.code == ErrorCode.BAD_PIN
    assert exc.value.field == "pin"


@pytest.mark.parametrize(
    "pin",
    [
        *(d * 6 for d in "0123456789"),
        "012345",
        "123456",
        "234567",
        "345678",
        "456789",
        "987654",
        "876543",
        "765432",
        "654321",
        "543210",
    ],
)
def test_weak_pins(pin):
    with pytest.raises(DomainError) as exc:
        validate_new_pin(pin, default_pin="135790")
    assert exc.value.code == ErrorCode.WEAK_PIN
    assert pin not in exc.value.message


def test_default_pin_is_refused():
    with pytest.raises(DomainError) as exc:
        validate_new_pin("123456")
    assert exc.value.code == ErrorCode.WEAK_PIN
    assert "default" in exc.value.message
    with pytest.raises(DomainError) as exc:
        validate_new_pin("802157", default_pin="802157")
    assert exc.value.code == ErrorCode.WEAK_PIN
    assert validate_new_pin("802157") == "802157"


@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_weak_exactly_when_repeated_or_straight(pin):
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    weak = pin == "123456" or len(set(pin)) == 1 or steps in ({1}, {-1})
    try:
        validate_new_pin(pin)
    except DomainError as err:
        assert err.code == ErrorCode.WEAK_PIN
        assert weak
    else:
        assert not weak
