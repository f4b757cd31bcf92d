"""How rows project onto policy lines (DESIGN.md §5): the one place that knows the line shapes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from app.store.policy import ProjectedLine

OPEN_END = "9999-12-31T23:59:59Z"


def outlet_subject(outlet_id: str) -> str:
    return f"outlet:{outlet_id}"


def kind_subject(kind: str) -> str:
    return f"kind:{kind}"


def _text(t: datetime | time.struct_time) -> str:
    # Every field zero-padded by hand: strftime's %Y writes the year 500 as "500", which sorts after
    # "2026" and made a window that ended in the year 500 look open today.
    if isinstance(t, time.struct_time):
        fields = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    else:
        fields = (t.year, t.month, t.day, t.hour, t.minute, t.second)
    year, month, day, hour, minute, second = fields
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def policy_time(moment: datetime | None) -> str:
    """Fixed-width UTC text of the second `moment` falls in, so string order is time order; None is
    the open end. Refuses (ValueError) a moment whose UTC year is not four digits."""
    if moment is None:
        return OPEN_END
    utc = moment.astimezone(UTC)
    if not 1000 <= utc.year <= 9999:
        raise ValueError(f"no policy time for the year {utc.year}")
    return _text(utc)


def window_start(moment: datetime) -> datetime:
    """A window's start rounded up to the whole second, and its end (`window_end`) down: policy times
    count whole seconds, and a grant must never be in force outside what was granted."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def window_end(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=0)


_current: tuple[int, str] = (0, OPEN_END)  # (a second since the epoch, its policy time)


def policy_time_now() -> str:
    """`policy_time` of the current second. Every partner call asks; the text changes only once a
    second, and formatting a datetime costs more than the rest of the decision's bookkeeping."""
    global _current
    second = int(time.time())
    if second != _current[0]:
        _current = (second, _text(time.gmtime(second)))
    return _current[1]


def outlet_group_line(outlet_id: str, kind: str, tenant_path: str) -> ProjectedLine:
    """Every outlet is in its kind's group inside its own tenant: `g, outlet:<id>, kind:<kind>, <tenant>`."""
    return ProjectedLine(
        "g", (outlet_subject(outlet_id), kind_subject(kind), tenant_path), "outlet", outlet_id
    )


def grant_subject(outlet_id: str | None, outlet_kind: str | None) -> str:
    return outlet_subject(outlet_id) if outlet_id is not None else kind_subject(outlet_kind or "")


@lru_cache(maxsize=1024)
def window_texts(valid_from: datetime, valid_until: datetime | None) -> tuple[str, str]:
    """A grant window's policy times (nbf, exp), rounded inward. Remembered: a bulk grant's 100,000
    lines share one window, and formatting it costs more than the rest of a line."""
    return policy_time(window_start(valid_from)), policy_time(window_end(valid_until))


def grant_line(grant, tenant_path: str) -> ProjectedLine:
    """An active grant: `p, <subject>, <granting tenant>, <service>, allow, <nbf>, <exp>, <grant id>`."""
    nbf, exp = window_texts(grant.valid_from, grant.valid_until)
    rule = (
        grant_subject(grant.outlet_id, grant.outlet_kind),
        tenant_path,
        grant.service,
        "allow",
        nbf,
        exp,
        str(grant.id),
    )
    return ProjectedLine("p", rule, "grant", str(grant.id))


def suspension_line(grant, tenant_path: str, why: str) -> ProjectedLine:
    """A suspended grant leaves a mark so a denial can say SUSPENDED or ABOVE_CEILING."""
    rule = (grant_subject(grant.outlet_id, grant.outlet_kind), tenant_path, grant.service, why, str(grant.id))
    return ProjectedLine("s", rule, "grant", str(grant.id))


def ceiling_line(tenant_path: str, kind: str, services: frozenset[str], ceiling_id: int) -> ProjectedLine:
    return ProjectedLine("c", (tenant_path, kind, " ".join(sorted(services))), "ceiling", str(ceiling_id))
