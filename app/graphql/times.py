"""The DateTime scalar of the API: every time a caller sends is checked here, before any resolver.

A time must carry its zone and lie in the accepted range (settings: 2000-01-01 to 2200-01-01 by
default). Grant windows, `at`, `activeAt` and ranges all arrive through this scalar, so none of
them can carry a year that the policy's fixed-width time text cannot order (the security review
enforced a grant whose window "ended" in the year 500) or a year whose UTC instant leaves 1-9999.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import dateutil.parser
from strawberry.schema.types.base_scalars import DateTimeDefinition, wrap_parser
from strawberry.types.scalar import ScalarDefinition

from app.settings import Settings


def accepted_time_parser(earliest: datetime, latest: datetime):
    """`text -> datetime`, refusing (ValueError) a time without a zone or outside [earliest, latest)."""

    def parse(text: str) -> datetime:
        moment = dateutil.parser.isoparse(text)
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("give the time with its time zone, e.g. 2026-03-03T09:00:00+08:00")
        try:
            in_range = earliest <= moment < latest
        except OverflowError:  # its UTC instant lies outside years 1-9999
            in_range = False
        if not in_range:
            raise ValueError(
                f"times are accepted from {earliest.date().isoformat()} to {latest.date().isoformat()} (UTC)"
            )
        return moment

    return parse


def datetime_scalar(settings: Settings) -> ScalarDefinition:
    parse = accepted_time_parser(settings.accepted_time_earliest, settings.accepted_time_latest)
    return dataclasses.replace(
        DateTimeDefinition,
        description="Date with time and time zone (ISO 8601), from "
        f"{settings.accepted_time_earliest.date().isoformat()} to "
        f"{settings.accepted_time_latest.date().isoformat()}",
        parse_value=wrap_parser(parse, "DateTime"),
    )
