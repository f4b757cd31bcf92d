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
from datetime import date

from app.domain.errors import DomainError, ErrorCode
from app.domain.regions import PROVINCE_PREFIXES, validate_region_code

ID_LENGTH = 18
MIN_BIRTH_DATE = date(1850, 1, 1)

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2**(17-i) mod 11
_CHECK_CHARS = "10X98765432"  # remainder 0..10 -> check character


def _bad(message: str) -> DomainError:
    return DomainError(ErrorCode.BAD_ID_NUMBER, message, field="id_number")


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') for the first 17 digits."""
    if not (isinstance(first17, str) and len(first17) == 17 and _digits(first17)):
        raise _bad("the check character is computed from exactly 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalize_id_number(s: str, today: date | None = None) -> str:
    """Return the canonical form (trimmed, check 'x' upper-cased) or raise DomainError(BAD_ID_NUMBER).

    The message says which rule failed: length, characters, region, birth date or check character.
    """
    if not isinstance(s, str):
        raise _bad(f"an ID number must be a string, got {type(s).__name__}")
    s = s.strip()
    if len(s) != ID_LENGTH:
        raise _bad(f"an ID number has 18 characters, got {len(s)}")
    if not _digits(s[:17]) or s[17] not in "0123456789Xx":
        raise _bad("bad characters in ID number: 17 digits then a digit or X are expected")
    s = s[:17] + s[17].upper()
    if s[:2] not in PROVINCE_PREFIXES:
        raise _bad("ID number region does not start with a GB/T 2260 province prefix")
    try:
        birth = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise _bad("ID number birth date is not a calendar date") from None
    if birth < MIN_BIRTH_DATE:
        raise _bad(f"ID number birth date is before {MIN_BIRTH_DATE.isoformat()}")
    if birth > (today or date.today()):
        raise _bad("ID number birth date is in the future")
    if id_check_char(s[:17]) != s[17]:
        raise _bad("ID number check character does not match (ISO 7064 MOD 11-2)")
    return s


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
