"""Refusals of use cases, with the API error code of DESIGN.md §7 and optional extensions."""

from __future__ import annotations


class OpsError(Exception):
    def __init__(self, code: str, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = extensions
        # True once the refusal's denial event is written (app/ops/auth.deny), so the use case's
        # refusal auditing (app/ops/refusals.py) does not write a second one.
        self.audited = False


def not_found(what: str, key: str) -> OpsError:
    return OpsError("NOT_FOUND", f"no {what} {key}")


def check_version(what: str, current: int, expected: int | None) -> None:
    """The one check of an `expectedVersion` (None: the caller did not give one), and the one answer
    to a stale one, whatever the object (docs/api.md, Errors). Made after the row is locked; the
    row's update is then a compare-and-set as well (app/store/tables/common.compare_and_set)."""
    if expected is not None and current != expected:
        raise OpsError(
            "CONFLICT",
            f"{what} is at version {current}, not {expected}; reload it and retry",
            field="expectedVersion",
            currentVersion=current,
        )


def changed_meanwhile(what: str = "the object") -> OpsError:
    """A compare-and-set that found the row changed by a concurrent request after it was read."""
    return OpsError(
        "CONFLICT", f"{what} changed while this request ran; reload it and retry", field="expectedVersion"
    )
