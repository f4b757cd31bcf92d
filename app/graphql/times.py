"""The DateTime scalar of the API: every time a caller sends is checked here, before any resolver.

A time must carry its zone and lie in the accepted range (settings: 2000-01-01 to 2200-01-01 by
default). Grant windows, `at`, `activeAt` and ranges all arrive through this scalar, so none of
them can carry a year that the policy's fixed-width time text cannot order (the security review
enforced a grant whose window "ended" in the year 500) or a year whose UTC instant leaves 1-9999.
"""

from __future__ import annotations

import dataclasses

from strawberry.schema.types.base_scalars import DateTimeDefinition, wrap_parser
from strawberry.types.scalar import ScalarDefinition

from app.ops.inputs import accepted_time_parser
from app.settings import Settings


def datetime_scalar(settings: Settings) -> ScalarDefinition:
    parse = accepted_time_parser(settings.accepted_time_earliest, settings.accepted_time_latest)
    return dataclasses.replace(
        DateTimeDefinition,
        description="Date with time and time zone (ISO 8601), from "
        f"{settings.accepted_time_earliest.date().isoformat()} to "
        f"{settings.accepted_time_latest.date().isoformat()}",
        parse_value=wrap_parser(parse, "DateTime"),
    )
