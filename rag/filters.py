"""Dates as written in articles, and filters as users give them.

:func:`normalize_date` is the one place where a written date (ISO 8601, German
"09.11.2022 19:45", "12. September 2023", or a date object from YAML) becomes the ISO
string stored in :class:`~rag.types.ArticleMeta`. It never fills in what was not written:
no time of day for a bare date, no time zone for a local time. Dates before 1900 or more
than a day in the future are refused as wrong metadata.

:func:`make_filters` turns the flags and fields of every edge (CLI, HTTP, Python) into
:class:`~rag.types.Filters`, raising :class:`~rag.errors.BadInput` with what to write instead.
:func:`filters_from_mapping` does the same for a ``{"outlet": …, "since": …}`` mapping
(MCP, LangChain).
Relative dates ("letzte Woche") are not read here (issue 14, part 2).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from rag.errors import BadInput
from rag.types import Filters

MONTHS = {
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "april": 4, "mai": 5, "juni": 6, "juli": 7,
    "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12,
    "january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7, "october": 10, "december": 12,
}
_TIME = r"(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?::(?P<s>\d{2}))?"
_GERMAN = re.compile(r"(?P<d>\d{1,2})\.\s?(?P<m>\d{1,2})\.\s?(?P<y>\d{4})(?:,?\s+" + _TIME + r"(?:\s*Uhr)?)?", re.I)
_WORDS = re.compile(r"(?P<d>\d{1,2})\.?\s+(?P<mname>[A-Za-zäÄ]+)\s+(?P<y>\d{4})(?:,?\s+" + _TIME + r"(?:\s*Uhr)?)?", re.I)
MIN_YEAR = 1900
MAX_DATE_CHARS = 64


def normalize_date(value: object) -> str:
    """ISO 8601 for a written date; ``ValueError`` (saying why) when it is not one."""
    if isinstance(value, datetime):
        parsed: date | datetime = value
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        parsed = _parse_text(value.strip())
    else:
        raise ValueError(f"expected a date, got {type(value).__name__}")
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    if day.year < MIN_YEAR or day > date.today() + timedelta(days=1):
        raise ValueError(f"{day.isoformat()} is not a plausible publication date")
    if not isinstance(parsed, datetime):
        return parsed.isoformat()
    return parsed.isoformat(timespec="seconds" if parsed.second else "minutes")


def _parse_text(text: str) -> date | datetime:
    if not text or len(text) > MAX_DATE_CHARS:
        raise ValueError("not a date" if not text else "too long for a date")
    iso = re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)
    if iso:
        return date.fromisoformat(text)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO 8601 date") from None
    match = _GERMAN.fullmatch(text.rstrip("."))
    month: int | None = None
    if match:
        month = int(match["m"])
    else:
        match = _WORDS.fullmatch(text.rstrip("."))
        if match:
            month = MONTHS.get(match["mname"].lower())
    if match is None or month is None:
        raise ValueError(f"{text!r} is not a date in a known form (2023-09-12, 12.09.2023, 12. September 2023)")
    try:
        if match["h"] is None:
            return date(int(match["y"]), month, int(match["d"]))
        return datetime(int(match["y"]), month, int(match["d"]), int(match["h"]), int(match["mi"]),
                        int(match["s"] or 0))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date ({exc})") from None


def later(first: str, second: str) -> bool:
    """True when ISO date ``second`` is after ``first`` (compared by day when either has no time)."""
    a, b = _comparable(first), _comparable(second)
    if isinstance(a, datetime) and isinstance(b, datetime) and (a.tzinfo is None) == (b.tzinfo is None):
        return b > a
    return _day(b) > _day(a)


def _comparable(text: str) -> date | datetime:
    return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def parse_bound(text: str | date, *, end: bool) -> date:
    """A ``since`` (``end=False``) or ``until`` (``end=True``) day: 2023-09-12, 2023-09 or 2023;
    a month or a year covers all of it (``--until 2023`` is 2023-12-31)."""
    if isinstance(text, date):
        return text
    value = str(text).strip()
    try:
        if re.fullmatch(r"\d{4}", value):
            return date(int(value), 12, 31) if end else date(int(value), 1, 1)
        if re.fullmatch(r"\d{4}-\d{1,2}", value):
            year, month = map(int, value.split("-"))
            return date(year, month, calendar.monthrange(year, month)[1] if end else 1)
        return date.fromisoformat(value)
    except ValueError:
        which = "until" if end else "since"
        raise BadInput(f"Cannot read the {which} date {value!r}: write it as 2023-09-12, 2023-09 or 2023.") from None


def make_filters(outlet: str | Iterable[str] | None = None, source: str | Iterable[str] | None = None,
                 since: str | date | None = None, until: str | date | None = None) -> Filters:
    """Filters from the values an edge was given (each may be missing)."""
    filters = Filters(outlets=_names(outlet), sources=_names(source),
                      since=parse_bound(since, end=False) if since else None,
                      until=parse_bound(until, end=True) if until else None)
    if filters.since and filters.until and filters.since > filters.until:
        raise BadInput(f"The since date {filters.since} is after the until date {filters.until}: nothing can match.")
    return filters


FILTER_KEYS = ("outlet", "source", "since", "until")


def filters_from_mapping(given: Mapping[str, Any] | None) -> Filters:
    """Filters from a mapping with the keys of :data:`FILTER_KEYS` (the ``filters`` argument of
    the MCP tools and the LangChain retriever); any other key is refused, naming the supported ones."""
    if not given:
        return Filters()
    if not isinstance(given, Mapping):
        raise BadInput("Filters are an object with the keys outlet, source, since and until.")
    unknown = sorted(set(given) - set(FILTER_KEYS))
    if unknown:
        raise BadInput(f"Unsupported filter {', '.join(map(repr, unknown))}: supported filters are outlet and "
                       "source (a name or a list of names), since and until (2023-09-12, 2023-09 or 2023).")
    return make_filters(**given)


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in items):
        raise BadInput("Outlet and source filters are names (text).")
    return tuple(dict.fromkeys(v.strip() for v in items if v.strip()))
