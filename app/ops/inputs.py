"""Input checks every area shares: tenant paths, names, ids, display text and the reason a change
is made.

Each refuses with BAD_INPUT naming the input field as the API calls it, before anything is read or
written (the use case's refusal auditing records the refusal). A domain rule's refusal (DomainError)
becomes BAD_INPUT here, in one way: `parse_input`.
"""

from __future__ import annotations

from datetime import datetime

import dateutil.parser

from app.domain.catalogue import parse_card_service, parse_outlet_kind
from app.domain.errors import DomainError
from app.domain.regions import parse_tenant_path
from app.domain.text import clean_display_text
from app.ops.errors import OpsError

MAX_REASON = 512
MAX_PATH = 64


MAX_OUTLET_ID = 64


MAX_NAME = 32  # card service and outlet kind names


MAX_ID_DIGITS = 18


def parse_input(field: str, parse, value):
    """Run a domain parser and name the API input field when it refuses."""
    try:
        return parse(value)
    except DomainError as err:
        raise OpsError("BAD_INPUT", err.message, field=field, reason=err.code) from None


def check_length(field: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise OpsError("BAD_INPUT", f"{field} is longer than {limit} characters", field=field)


def parse_tenant(value: str, field: str = "tenant") -> str:
    check_length(field, value, MAX_PATH)
    return parse_input(field, parse_tenant_path, value).path


def parse_grant_id(value: str, field: str = "id") -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS):
        raise OpsError("BAD_INPUT", "a grant id is a decimal number", field=field)
    return int(value)


def parse_service(value: str, field: str = "service") -> str:
    check_length(field, value, MAX_NAME)
    return parse_input(field, parse_card_service, value).value


def parse_kind(value: str, field: str = "outletKind") -> str:
    check_length(field, value, MAX_NAME)
    return parse_input(field, parse_outlet_kind, value).value


def display_text(value: str, field: str, limit: int) -> str:
    """Visible text (app/domain/text.py) of 1 to `limit` characters once normalised and stripped."""
    cleaned = parse_input(field, lambda text: clean_display_text(text, field), value)
    if not 1 <= len(cleaned) <= limit:
        raise OpsError("BAD_INPUT", f"{field} must have 1 to {limit} characters", field=field)
    return cleaned


def reason_text(value: str, field: str = "reason") -> str:
    """Why a change is made, kept in the audit trail: visible text of 1 to 512 characters."""
    return display_text(value, field, MAX_REASON)


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
