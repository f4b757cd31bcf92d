"""Refusals of use cases, with the API error code of DESIGN.md §7 and optional extensions."""

from __future__ import annotations


class OpsError(Exception):
    def __init__(self, code: str, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions = extensions


def not_found(what: str, key: str) -> OpsError:
    return OpsError("NOT_FOUND", f"no {what} {key}")
