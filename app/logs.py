"""Structured logs: one JSON object per line (time in UTC, level, logger, message, the request id of
the request being served, the worker's pid), written by the standard library's logging.

The request id is the one kept in the request's audit events (a proxy's X-Request-Id, else one made
here), so a log line leads to the events and back. A log line never carries a personal number: the
code logs none, and the formatter masks anything shaped like an ID or bank card number that reaches a
message anyway (an exception's text, a driver's error), keeping its first and last four characters.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import uuid
from datetime import UTC, datetime

import orjson

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("ssc_request_id", default=None)
# A proxy's id is kept only if it is a plain token: it is written into logs and audit events.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# 15-19 digits (bank card numbers; old 15-digit ID numbers) or 17 digits and a check character.
_PERSONAL_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{7,11}(\d{3}[\dXx])(?![0-9A-Za-z])")


def request_id_from(header: str | None) -> str:
    """The request's id: the caller's X-Request-Id if it is a plain token, else a new one."""
    return header if header and _GOOD_ID.fullmatch(header) else uuid.uuid4().hex


def mask_numbers(text: str) -> str:
    return _PERSONAL_NUMBER.sub(lambda m: f"{m.group(1)}{'*' * (len(m.group(0)) - 8)}{m.group(2)}", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_numbers(record.getMessage()),
            "pid": os.getpid(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["error"] = mask_numbers(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def log_config(level: str = "info") -> dict:
    """logging.config.dictConfig settings for the server and uvicorn: every logger as JSON on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    loggers = ("ssc", "uvicorn", "uvicorn.error", "uvicorn.access")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "loggers": {
            name: {"handlers": ["json"], "level": level.upper(), "propagate": False} for name in loggers
        },
    }


class RequestIds:
    """ASGI middleware: each HTTP request gets its id (scope["request_id"], the REQUEST_ID of its log
    lines), which the response carries back in X-Request-Id."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        request_id = scope["request_id"] = request_id_from(header)
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
