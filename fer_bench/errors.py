"""Error messages: how they quote the line or value they refuse, and what an error came from.

A message names the culprit so that it can be found; it need not repeat all of it. A label
file that is one 100 MB line (a binary file, a file without newlines) must give a one-line
error, not a 100 MB one.
"""

from __future__ import annotations

from typing import Iterator, Optional

QUOTE_LIMIT = 80


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as it is, cut to ``limit`` characters (saying how long the whole was when it is cut)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def excerpt(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters (saying how long
    the whole was when it is cut)."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > limit:
        value = text[:limit]  # before repr: a huge value is never copied whole
    quoted = repr(value)
    if text is not None and len(text) > limit:
        return f"{quoted[:-1]}...{quoted[-1]} ({len(text):,} characters)"
    if len(quoted) > limit:
        return f"{quoted[:limit]}... ({len(quoted):,} characters)"
    return quoted


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what led to it, as a traceback shows them: the explicit cause, else the context
    (unless ``raise ... from None`` hid it)."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
