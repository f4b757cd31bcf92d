"""GB/T 2260 region codes, tenant paths and NBS codes of grassroots platforms.

A tenant (one HRSS department) is identified by the path of region codes from the national root
down to it: `cn`, `cn/440000` (Guangdong), `cn/440000/440100` (Guangzhou),
`cn/440000/440100/440106` (Tianhe). The path string is the tenant's Casbin domain, so it must be
canonical: one department, one path. The rules below are therefore checked on every path we build.

Region code shape (6 digits, `PPFFCC`):

- `PP0000` is a province; `PP` must be a real province prefix (11-15, 21-23, 31-37, 41-46, 50-54,
  61-65, 71, 81, 82).
- `PPFF00` (FF != 00) is a prefecture (city) level code.
- `PPFFCC` (CC != 00) is a county level code. `PP00CC` does not exist and is refused.

Path rules: each segment is exactly one level below the previous one and lies inside it (same
first 2 digits under a province, same first 4 under a prefecture). Prefectures without counties
(Dongguan 441900, Zhongshan 442000) are simply prefectures with no children; municipalities
(Beijing 110000 -> 110100 -> 110105) follow the same rules.

Province-administered county-level units: GB/T 2260 groups them under the pseudo-prefecture
`PP9000` ("省直辖县级行政区划", e.g. 429000 in Hubei) and numbers them `PP90CC` (429004 Xiantao,
419001 Jiyuan, 4690xx in Hainan, 6590xx in Xinjiang). `PP9000` is a grouping, not a department, so
such a county sits *directly* under its province (`cn/420000/429004`) and `PP9000` is refused as a
path segment. That keeps one path per department (otherwise `cn/420000/429000/429004` would be a
second Casbin domain for Xiantao).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from app.domain.errors import DomainError, ErrorCode, show

ROOT = "cn"
"""The national root of every tenant path (the Ministry of Human Resources and Social Security)."""

PROVINCE_PREFIXES: frozenset[str] = frozenset(
    f"{n:02d}"
    for n in (*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66))
) | frozenset({"71", "81", "82"})
"""First two digits of every GB/T 2260 province-level code (including Taiwan, Hong Kong, Macao)."""

PROVINCE_ADMINISTERED = "90"
"""Prefecture digits (3-4) of province-administered county-level units (`PP90CC`)."""


class TenantLevel(StrEnum):
    national = "national"
    province = "province"
    prefecture = "prefecture"
    county = "county"


def _is_digits(s: object, n: int) -> bool:
    # str.isdigit() alone accepts non-ASCII digits such as '٤' or '²'; codes are ASCII only.
    return isinstance(s, str) and len(s) == n and s.isascii() and s.isdigit()


def _region_problem(code: object) -> str | None:
    """Why `code` is not a GB/T 2260 region code, or None if it is one."""
    if not isinstance(code, str):
        return f"a region code must be a string, got {type(code).__name__}"
    if not _is_digits(code, 6):
        return f"region code {show(code)} must be exactly 6 ASCII digits"
    if code[:2] not in PROVINCE_PREFIXES:
        return f"region code {code!r} does not start with a GB/T 2260 province prefix"
    if code[2:4] == "00" and code[4:] != "00":
        return f"region code {code!r} has county digits but no prefecture digits"
    return None


def _level_of_valid(code: str) -> TenantLevel:
    if code[2:] == "0000":
        return TenantLevel.province
    if code[4:] == "00":
        return TenantLevel.prefecture
    return TenantLevel.county


def validate_region_code(code: str) -> str:
    """Return `code` if it is a well-formed GB/T 2260 code, else raise DomainError(BAD_REGION_CODE).

    Only the shape is checked (the standard changes every year and old codes stay in use in ID
    numbers and card records); whether a department exists is the tenant tree's business.
    """
    problem = _region_problem(code)
    if problem is not None:
        raise DomainError(ErrorCode.BAD_REGION_CODE, problem, field="region_code")
    return code


def region_level(code: str) -> TenantLevel:
    """Province, prefecture or county, from the code's shape (raises BAD_REGION_CODE)."""
    return _level_of_valid(validate_region_code(code))


# --- tenant paths -------------------------------------------------------------------------------


def _child_problem(parent: tuple[str, ...], code: object) -> str | None:
    """Why `code` cannot follow the region codes `parent` in a tenant path, or None."""
    problem = _region_problem(code)
    if problem is not None:
        return f"bad segment {show(code)}: {problem}"
    assert isinstance(code, str)
    level = _level_of_valid(code)
    if not parent:
        if level is not TenantLevel.province:
            return f"bad segment {code!r}: only a province code (PP0000) may follow {ROOT!r}"
        return None
    above = parent[-1]
    above_level = _level_of_valid(above)
    if above_level is TenantLevel.province:
        if code[:2] != above[:2]:
            return f"bad segment {code!r}: not inside province {above!r}"
        if level is TenantLevel.prefecture:
            if code[2:4] == PROVINCE_ADMINISTERED:
                return (
                    f"bad segment {code!r}: {code} groups province-administered county-level units and is "
                    f"not a department; put those counties ({code[:4]}xx) directly under {above!r}"
                )
            return None
        if level is TenantLevel.county and code[2:4] == PROVINCE_ADMINISTERED:
            return None
        return f"bad segment {code!r}: a {level} code cannot sit directly under province {above!r}"
    if above_level is TenantLevel.prefecture:
        if level is not TenantLevel.county:
            return f"bad segment {code!r}: only a county code may follow prefecture {above!r}"
        if code[:4] != above[:4]:
            return f"bad segment {code!r}: not inside prefecture {above!r}"
        return None
    return f"bad segment {code!r}: county {above!r} has no tenants below it"


def _check_codes(codes: Iterable[object]) -> tuple[str, ...]:
    checked: list[str] = []
    for code in codes:
        problem = _child_problem(tuple(checked), code)
        if problem is not None:
            raise DomainError(ErrorCode.BAD_TENANT_PATH, problem, field="tenant_path")
        checked.append(code)  # type: ignore[arg-type]  # _child_problem proved it is a str
    return tuple(checked)


@dataclass(frozen=True)
class TenantPath:
    """A validated tenant path; `codes` are the region codes after `cn` (empty for the root).

    Construction validates (so every instance is canonical); use `parse_tenant_path` for strings.
    """

    codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.codes, str):
            raise DomainError(
                ErrorCode.BAD_TENANT_PATH,
                "TenantPath.codes must be a sequence of region codes, not a string; use parse_tenant_path",
                field="tenant_path",
            )
        object.__setattr__(self, "codes", _check_codes(self.codes))

    @classmethod
    def _trusted(cls, codes: tuple[str, ...]) -> TenantPath:
        # Prefixes of a valid path are valid: skip re-validation for parent/ancestors.
        obj = object.__new__(cls)
        object.__setattr__(obj, "codes", codes)
        return obj

    @property
    def path(self) -> str:
        return "/".join((ROOT, *self.codes))

    @property
    def level(self) -> TenantLevel:
        return _level_of_valid(self.codes[-1]) if self.codes else TenantLevel.national

    @property
    def code(self) -> str:
        """The tenant's own region code, or `cn` for the national root."""
        return self.codes[-1] if self.codes else ROOT

    @property
    def parent(self) -> TenantPath | None:
        return TenantPath._trusted(self.codes[:-1]) if self.codes else None

    def ancestors(self) -> list[TenantPath]:
        """Strict ancestors, root first."""
        return [TenantPath._trusted(self.codes[:i]) for i in range(len(self.codes))]

    def is_ancestor_of(self, other: TenantPath) -> bool:
        """True iff `other` lies strictly below this tenant."""
        n = len(self.codes)
        return n < len(other.codes) and other.codes[:n] == self.codes

    def contains(self, other: TenantPath) -> bool:
        """True iff `other` is this tenant or lies below it (an ancestor acts in its descendants)."""
        n = len(self.codes)
        return n <= len(other.codes) and other.codes[:n] == self.codes

    def child(self, code: str) -> TenantPath:
        """The path one level down; raises BAD_TENANT_PATH if `code` cannot sit here."""
        problem = _child_problem(self.codes, code)
        if problem is not None:
            raise DomainError(ErrorCode.BAD_TENANT_PATH, problem, field="tenant_path")
        return TenantPath._trusted((*self.codes, code))

    def __str__(self) -> str:
        return self.path


ROOT_PATH = TenantPath()


def parse_tenant_path(s: str) -> TenantPath:
    """Parse and validate `cn/PP0000/PPFF00/PPFFCC`; raises DomainError(BAD_TENANT_PATH).

    Strict on purpose (no trimming, no case folding): the string is a Casbin domain and an audit
    key, so a path that is not already canonical is refused rather than silently rewritten.
    """

    def bad(message: str) -> DomainError:
        return DomainError(ErrorCode.BAD_TENANT_PATH, message, field="tenant_path")

    if not isinstance(s, str):
        raise bad(f"a tenant path must be a string, got {type(s).__name__}")
    if not s:
        raise bad("tenant path is empty")
    if any(c.isspace() for c in s):
        raise bad(f"tenant path {show(s)} contains whitespace")
    segments = s.split("/")
    if segments[0] != ROOT:
        raise bad(f"tenant path must start with {ROOT!r}; bad segment {show(segments[0])}")
    if len(segments) > 1 and segments[-1] == "":
        raise bad(f"tenant path {show(s)} must not end with '/'")
    for i, seg in enumerate(segments[1:], start=1):
        if seg == "":
            raise bad(f"tenant path {show(s)} has an empty segment at position {i}")
    return TenantPath(tuple(segments[1:]))


# --- hot-path string helpers (no validation) ----------------------------------------------------


def dom_in(a: str, b: str) -> bool:
    """Casbin domain matcher: domain `a` is `b` or lies below it.

    `a == b` or `a` starts with `b + "/"` (so `cn/4400001` is not under `cn/440000`). Called for
    every policy check, hence plain string work, without building `b + "/"`.
    """
    return a == b or (len(a) > len(b) and a[len(b)] == "/" and a.startswith(b))


def ancestor_paths(path: str) -> list[str]:
    """`cn/440000/440100` -> `["cn", "cn/440000", "cn/440000/440100"]` (root first, self included).

    No validation: it runs on every decision over paths that were validated when stored.
    """
    out: list[str] = []
    i = path.find("/")
    while i != -1:
        out.append(path[:i])
        i = path.find("/", i + 1)
    out.append(path)
    return out


# --- NBS statistical codes (grassroots platforms) -----------------------------------------------


def validate_nbs_code(code: str, county_code: str | None = None) -> str:
    """Validate the NBS statistical division code of a grassroots platform; raises BAD_NBS_CODE.

    9 digits identify a township/street (乡镇/街道), 12 digits a village/community (村/社区) whose
    first 9 digits are its township. The first 6 digits are the region code of the county the
    platform belongs to. A prefecture-shaped head is accepted too, because prefectures without
    counties (Dongguan 441900, Zhongshan 442000) number their towns directly (441900003); the
    `PP9000` grouping code and province codes are refused. Township and village parts are never
    `000`. If `county_code` (the platform's tenant code) is given, the head must equal it.
    """

    def bad(message: str) -> DomainError:
        return DomainError(ErrorCode.BAD_NBS_CODE, message, field="nbs_code")

    if not (isinstance(code, str) and len(code) in (9, 12) and code.isascii() and code.isdigit()):
        raise bad(
            f"NBS code {show(code)} must be 9 digits (township/street) or 12 digits (village/community)"
        )
    head = code[:6]
    if (
        _region_problem(head) is not None
        or _level_of_valid(head) is TenantLevel.province
        or head[2:] == PROVINCE_ADMINISTERED + "00"
    ):
        raise bad(f"NBS code {code!r}: first 6 digits {head!r} are not a county-level region code")
    if code[6:9] == "000":
        raise bad(f"NBS code {code!r}: township digits (7-9) must not be 000")
    if len(code) == 12 and code[9:] == "000":
        raise bad(f"NBS code {code!r}: village digits (10-12) must not be 000")
    if county_code is not None and head != county_code:
        raise bad(f"NBS code {code!r} belongs to region {head!r}, not {show(county_code)}")
    return code


def subtree_bounds(path: str) -> tuple[str, str]:
    """[low, high): the paths that are `path` or lie below it, as one range an index serves. Tenant
    paths hold only digits and "/", and every path below `path` continues with "/", which sorts just
    before "0" (so cn/4400001 is outside cn/440000's range). Byte order: a PostgreSQL database is
    created with the C collation (README, Settings)."""
    return path, path + "0"
