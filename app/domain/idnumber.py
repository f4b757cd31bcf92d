"""Resident ID numbers (公民身份号码, GB 11643-1999), used as the social security number.

Layout of the 18 characters: 6-digit region of first registration, 8-digit birth date YYYYMMDD,
3-digit sequence (odd for men, even for women), and a check character by ISO 7064 MOD 11-2.

Only the region's province prefix is checked: the region part records where the number was first
issued, and many of those codes no longer exist in the current GB/T 2260 edition.

The earliest accepted birth date is 1850-01-01, not 1900-01-01: the widely used test vector
440524188001010014 has an 1880 birth date, and a validator that refuses real-world-shaped data
helps nobody; the future is refused (a clock can be injected with `today`).

Error messages never contain the number: they end up in API errors and logs (design §6).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date

from app.domain.errors import DomainError, ErrorCode
from app.domain.regions import PROVINCE_PREFIXES, validate_region_code

ID_LENGTH = 18
MIN_BIRTH_DATE = date(1850, 1, 1)

_CHECK_CHARS = "10X98765432"  # remainder 0..10 -> check character


def _bad(message: str) -> DomainError:
    return DomainError(ErrorCode.BAD_ID_NUMBER, message, field="id_number")


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def _check_char(first17: str) -> str:
    # The weights are 2**(17-i) mod 11. As 13 ≡ 2 (mod 11), reading the 17 digits as a base-13 number
    # gives sum(d_i * 2**(16-i)) modulo 11, so twice that is the weighted sum: one C call, not a loop.
    return _CHECK_CHARS[2 * int(first17, 13) % 11]


def id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') for the first 17 digits."""
    if not (isinstance(first17, str) and len(first17) == 17 and _digits(first17)):
        raise _bad("the check character is computed from exactly 17 digits")
    return _check_char(first17)


# Birth dates already accepted, by their YYYYMMDD text: at most one entry per day since 1850, and a
# date that was not in the future once never is later. Bulk imports see the same dates again and again.
_PAST_BIRTHS: dict[str, date] = {}


def _birth_date(yyyymmdd: str, today: date | None) -> date:
    birth = _PAST_BIRTHS.get(yyyymmdd)
    if birth is not None:
        if today is not None and birth > today:
            raise _bad("ID number birth date is in the future")
        return birth
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise _bad("ID number birth date is not a calendar date") from None
    if birth < MIN_BIRTH_DATE:
        raise _bad(f"ID number birth date is before {MIN_BIRTH_DATE.isoformat()}")
    if birth > (today or date.today()):
        raise _bad("ID number birth date is in the future")
    if birth <= date.today():
        _PAST_BIRTHS[yyyymmdd] = birth
    return birth


def normalize_id_number(s: str, today: date | None = None) -> str:
    """Return the canonical form (trimmed, check 'x' upper-cased) or raise DomainError(BAD_ID_NUMBER).

    The message says which rule failed: length, characters, region, birth date or check character.
    """
    if not isinstance(s, str):
        raise _bad(f"an ID number must be a string, got {type(s).__name__}")
    s = s.strip()
    if len(s) != ID_LENGTH:
        raise _bad(f"an ID number has 18 characters, got {len(s)}")
    first17, last = s[:17], s[17]
    if not _digits(first17) or last not in "0123456789Xx":
        raise _bad("bad characters in ID number: 17 digits then a digit or X are expected")
    if last == "x":
        last = "X"
        s = first17 + last
    if s[:2] not in PROVINCE_PREFIXES:
        raise _bad("ID number region does not start with a GB/T 2260 province prefix")
    _birth_date(s[6:14], today)
    if _check_char(first17) != last:
        raise _bad("ID number check character does not match (ISO 7064 MOD 11-2)")
    return s


def all_canonical_id_numbers(numbers: Iterable[str], today: date | None = None) -> bool:
    """True iff `normalize_id_number(n, today) == n` for every `n`: all valid and already canonical.

    The bulk check of imports, one call for many numbers (a refused number is then looked at again
    with `normalize_id_number` for its message)."""
    for s in numbers:
        # `_digits` and `_check_char` inlined: this runs once per imported card.
        first17 = s[:17]
        if not (
            len(s) == ID_LENGTH and first17.isdigit() and first17.isascii() and s[:2] in PROVINCE_PREFIXES
        ):
            return False
        if _CHECK_CHARS[2 * int(first17, 13) % 11] != s[17]:
            return False
        birth = _PAST_BIRTHS.get(s[6:14])
        if birth is None or (today is not None and birth > today):
            try:
                _birth_date(s[6:14], today)
            except DomainError:
                return False
    return True


def is_valid_id_number(s: str, today: date | None = None) -> bool:
    try:
        normalize_id_number(s, today)
    except DomainError:
        return False
    return True


def mask_id_number(s: str) -> str:
    """`11010519491231002X` -> `1101**********002X`: first 4, ten `*`, last 4.

    Meant for logs, audit events and error paths, so it never raises and never reveals a whole
    number: anything that is not 18 characters (after trimming) is masked entirely.
    """
    s = s.strip() if isinstance(s, str) else ""
    if len(s) != ID_LENGTH:
        return "*" * len(s)
    return s[:4] + "*" * 10 + s[-4:]


def mask_canonical_id_numbers(numbers: Iterable[str]) -> list[str]:
    """`mask_id_number` of numbers already canonical (see `all_canonical_id_numbers`), in bulk."""
    return [s[:4] + "*" * 10 + s[14:] for s in numbers]


def birth_date_of(id_number: str) -> date:
    """Birth date encoded in a valid ID number (the number is validated first)."""
    s = normalize_id_number(id_number)
    return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))


def generate_id_number(rng: random.Random, region_code: str, birth: date, today: date | None = None) -> str:
    """A valid synthetic ID number for `region_code` and `birth` (sequence drawn from `rng`).

    For seed data, tests and benchmarks; raises BAD_REGION_CODE or BAD_ID_NUMBER when the inputs
    could not produce a number that `normalize_id_number` accepts.
    """
    validate_region_code(region_code)
    if not MIN_BIRTH_DATE <= birth <= (today or date.today()):
        raise _bad(f"birth date must lie between {MIN_BIRTH_DATE.isoformat()} and today")
    first17 = f"{region_code}{birth.year:04d}{birth.month:02d}{birth.day:02d}{rng.randrange(1, 1000):03d}"
    return first17 + id_check_char(first17)
