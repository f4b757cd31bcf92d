"""The console's languages: Simplified Chinese first, English second.

Messages are written in English in the templates (`_("Log in")`) and translated from Babel message
catalogues, app/console/locale/<language>/LC_MESSAGES/console.po, read when the app starts (no compile
step: `make serve` needs only Python). tests/console/test_i18n.py fails on a message without a
translation. Dates are shown in China Standard Time in the language's own long form (2026年3月3日).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from starlette.requests import Request

from app.ops.compliance.labels import CST

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("zh_CN", "en")  # the first is the default
LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}
COOKIE = "ssc_lang"


@cache
def catalogue(language: str) -> dict[str, str]:
    """msgid -> translation (only the translated ones)."""
    with (LOCALE_DIR / language / "LC_MESSAGES" / "console.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po, locale=language) if m.id and m.string}


def chosen(request: Request) -> str:
    """The language of the cookie set by the switch, else the browser's first known one, else
    Chinese."""
    picked = request.cookies.get(COOKIE)
    if picked in LANGUAGES:
        return picked
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return LANGUAGES[0]


class Translator:
    def __init__(self, language: str) -> None:
        self.language = language
        self.messages = catalogue(language)

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)

    def date(self, moment: datetime | None) -> str:
        return (
            "" if moment is None else format_date(moment.astimezone(CST), format="long", locale=self.language)
        )

    def time(self, moment: datetime | None) -> str:
        return (
            ""
            if moment is None
            else format_datetime(moment.astimezone(CST), format="medium", locale=self.language)
        )
