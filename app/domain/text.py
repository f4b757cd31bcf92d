"""Display text people type and others read: names, addresses, document references, reasons.

Such text is shown in lists, exports and the console, and kept in the audit trail, so it must read
the same to everyone. It is normalised to NFC (one encoding per character: the same name typed on two
systems compares equal) and refused when it holds characters that change how text around them is
shown or that cannot be stored: control characters (NUL, newlines, tabs, ANSI escapes), format
characters (zero-width spaces and joiners, right-to-left overrides and other bidirectional
controls), line and paragraph separators, and lone surrogates. Ordinary CJK text and punctuation
(、。，〔〕《》) and the ideographic space are letters, punctuation and spaces, and pass.
"""

from __future__ import annotations

import unicodedata

from app.domain.errors import DomainError, ErrorCode

# Cc control, Cf format (U+200B, U+202E, U+FEFF…), Cs surrogate, Zl/Zp line and paragraph separators.
_REFUSED = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a broken character",
}
_REFUSED |= {"Zl": "a line break", "Zp": "a line break"}


def clean_display_text(value: str, field: str | None = None) -> str:
    """`value` normalised to NFC with surrounding whitespace removed; BAD_TEXT naming the first
    refused character's position (never the text itself) otherwise."""
    for position, char in enumerate(value, start=1):
        what = _REFUSED.get(unicodedata.category(char))
        if what is not None:
            raise DomainError(
                ErrorCode.BAD_TEXT,
                f"character {position} is {what} (U+{ord(char):04X}); only visible text is accepted",
                field=field,
            )
    return unicodedata.normalize("NFC", value).strip()
