"""Dates and times as the console's forms take them: China Standard Time, YYYY-MM-DD and HH:MM[:SS],
checked against the accepted range of the API (settings) like every time a caller sends."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from app.ops.compliance.labels import CST
from app.ops.errors import OpsError
from app.ops.inputs import accepted_time_parser
from app.settings import Settings


def today() -> str:
    return datetime.now(CST).date().isoformat()


def moment(
    settings: Settings, date_text: str, field: str, time_text: str = "", *, end: bool = False
) -> datetime:
    """The moment a form names in Beijing time: the date's first moment (or HH:MM[:SS] that day), or
    with `end` the first moment of the next day (a window "until 3 March" includes 3 March)."""
    clock_format = "%H:%M:%S" if time_text.count(":") == 2 else "%H:%M"
    try:
        day = datetime.strptime(date_text, "%Y-%m-%d").date()
        clock = datetime.strptime(time_text, clock_format).time() if time_text else time()
    except ValueError:
        why = "give the date as YYYY-MM-DD and the time as HH:MM"
        raise OpsError("BAD_INPUT", why, field=field) from None
    picked = datetime.combine(day, clock, CST) + (timedelta(days=1) if end else timedelta())
    parse = accepted_time_parser(settings.accepted_time_earliest, settings.accepted_time_latest)
    try:
        return parse(picked.isoformat())
    except ValueError as err:
        raise OpsError("BAD_INPUT", str(err), field=field) from None
