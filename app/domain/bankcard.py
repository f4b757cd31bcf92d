"""Bank card numbers (the financial account on a social security card).

Numbers are 16 to 19 digits with a Luhn (ISO/IEC 7812-1) check digit; China UnionPay cards issued
with social security cards are usually 19 digits. People write them in groups of four, so spaces
are removed before checking. Error messages never contain the number (design §6).
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from app.domain.errors import DomainError, ErrorCode

MIN_LENGTH = 16
MAX_LENGTH = 19

# ASCII digit d -> the digit sum of 2*d, as a byte value: the doubled digits are summed in C.
_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def _bad(message: str) -> DomainError:
    return DomainError(ErrorCode.BAD_BANK_CARD_NUMBER, message, field="bank_card_number")


def _digits(s: object) -> bool:
    return isinstance(s, str) and s.isascii() and s.isdigit()


def _luhn_sum(digits: str, double_rightmost: bool) -> int:
    """Luhn sum of ASCII digits: every second digit from the right doubled (digit sum), the rest as is."""
    raw = digits.encode("ascii")
    doubled, kept = (raw[::-2], raw[-2::-2]) if double_rightmost else (raw[-2::-2], raw[::-2])
    return sum(doubled.translate(_DOUBLED)) + sum(kept) - ord("0") * len(kept)


def luhn_check_digit(partial: str) -> str:
    """The digit to append to `partial` so that the whole number passes the Luhn check."""
    if not _digits(partial):
        raise _bad("a Luhn check digit is computed from digits only")
    # The rightmost digit of `partial` becomes second from the right, so it is doubled.
    return str((10 - _luhn_sum(partial, double_rightmost=True) % 10) % 10)


def luhn_ok(number: str) -> bool:
    """True iff `number` is at least two ASCII digits and its Luhn sum is a multiple of 10."""
    return _digits(number) and len(number) >= 2 and _luhn_sum(number, double_rightmost=False) % 10 == 0


def normalize_bank_card_number(s: str) -> str:
    """Remove spaces, then require 16-19 digits with a valid Luhn digit; raises BAD_BANK_CARD_NUMBER."""
    if not isinstance(s, str):
        raise _bad(f"a bank card number must be a string, got {type(s).__name__}")
    number = s.strip().replace(" ", "")
    if not _digits(number):
        raise _bad("a bank card number contains digits only (spaces between groups are allowed)")
    if not MIN_LENGTH <= len(number) <= MAX_LENGTH:
        raise _bad(f"a bank card number has {MIN_LENGTH}-{MAX_LENGTH} digits, got {len(number)}")
    if _luhn_sum(number, double_rightmost=False) % 10:  # digits and length checked above
        raise _bad("bank card number fails the Luhn check")
    return number


def all_canonical_bank_card_numbers(numbers: Iterable[str]) -> bool:
    """True iff `normalize_bank_card_number(n) == n` for every `n`: 16-19 ASCII digits, Luhn valid.

    The bulk check of imports, one call for many numbers."""
    for number in numbers:
        # `_digits` and `_luhn_sum` inlined: this runs once per imported card, and the calls would
        # cost as much as the work. bytes.isdigit accepts ASCII digits only.
        raw = number.encode() if isinstance(number, str) else b""
        if not (MIN_LENGTH <= len(raw) <= MAX_LENGTH and raw.isdigit()):
            return False
        kept = raw[::-2]
        if (sum(raw[-2::-2].translate(_DOUBLED)) + sum(kept) - ord("0") * len(kept)) % 10:
            return False
    return True


def mask_bank_card_number(s: str) -> str:
    """`6222021234567890128` -> `622202*********0128`: first 6, `*` for the middle, last 4.

    Spaces are removed first; the length is kept. Never raises and never reveals a whole number:
    input shorter than 16 characters (where 6 + 4 would show almost everything) is fully masked.
    """
    number = s.strip().replace(" ", "") if isinstance(s, str) else ""
    if len(number) < MIN_LENGTH:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_canonical_bank_card_numbers(numbers: Iterable[str]) -> list[str]:
    """`mask_bank_card_number` of numbers already canonical (see `all_canonical_bank_card_numbers`),
    in bulk."""
    return [n[:6] + "*" * (len(n) - 10) + n[-4:] for n in numbers]


def generate_bank_card_number(rng: random.Random, bin: str, length: int = MAX_LENGTH) -> str:
    """A Luhn-valid synthetic number of `length` digits starting with the issuer prefix `bin`."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise _bad(f"a bank card number has {MIN_LENGTH}-{MAX_LENGTH} digits, got {length}")
    if not _digits(bin) or not 1 <= len(bin) < length:
        raise _bad("the BIN must be digits and shorter than the card number")
    body = bin + "".join(str(rng.randrange(10)) for _ in range(length - len(bin) - 1))
    return body + luhn_check_digit(body)
