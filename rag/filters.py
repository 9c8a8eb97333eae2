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
:func:`question_period` reads the publication period a question names ("im Januar 2024",
"letzte Woche", "seit 2022", "in the last month"), relative to today.
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
    "januar": 1,
    "jänner": 1,
    "februar": 2,
    "märz": 3,
    "maerz": 3,
    "april": 4,
    "mai": 5,
    "juni": 6,
    "juli": 7,
    "august": 8,
    "september": 9,
    "oktober": 10,
    "november": 11,
    "dezember": 12,
    "january": 1,
    "february": 2,
    "march": 3,
    "may": 5,
    "june": 6,
    "july": 7,
    "october": 10,
    "december": 12,
}
_TIME = r"(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?::(?P<s>\d{2}))?"
_GERMAN = re.compile(r"(?P<d>\d{1,2})\.\s?(?P<m>\d{1,2})\.\s?(?P<y>\d{4})(?:,?\s+" + _TIME + r"(?:\s*Uhr)?)?", re.I)
_WORDS = re.compile(
    r"(?P<d>\d{1,2})\.?\s+(?P<mname>[A-Za-zäÄ]+)\s+(?P<y>\d{4})(?:,?\s+" + _TIME + r"(?:\s*Uhr)?)?", re.I
)
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
        return datetime(
            int(match["y"]), month, int(match["d"]), int(match["h"]), int(match["mi"]), int(match["s"] or 0)
        )
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


def make_filters(
    outlet: str | Iterable[str] | None = None,
    source: str | Iterable[str] | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
) -> Filters:
    """Filters from the values an edge was given (each may be missing)."""
    filters = Filters(
        outlets=_names(outlet),
        sources=_names(source),
        since=parse_bound(since, end=False) if since else None,
        until=parse_bound(until, end=True) if until else None,
    )
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
        raise BadInput(
            f"Unsupported filter {', '.join(map(repr, unknown))}: supported filters are outlet and "
            "source (a name or a list of names), since and until (2023-09-12, 2023-09 or 2023)."
        )
    return make_filters(**given)


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in items):
        raise BadInput("Outlet and source filters are names (text).")
    return tuple(dict.fromkeys(v.strip() for v in items if v.strip()))


# ----- time in a question ("im Januar 2024", "letzte Woche", "seit 2022", "in the last month")
_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_NUM = {
    "einen": 1,
    "einem": 1,
    "einer": 1,
    "zwei": 2,
    "drei": 3,
    "vier": 4,
    "fünf": 5,
    "sechs": 6,
    "sieben": 7,
    "acht": 8,
    "neun": 9,
    "zehn": 10,
    "zwölf": 12,
    "a": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
}
_COUNT = r"(?P<n>\d{1,3}|" + "|".join(_NUM) + r")"
_UNIT = {
    "tag": "day",
    "tagen": "day",
    "tage": "day",
    "day": "day",
    "days": "day",
    "woche": "week",
    "wochen": "week",
    "week": "week",
    "weeks": "week",
    "monat": "month",
    "monaten": "month",
    "monate": "month",
    "month": "month",
    "months": "month",
    "jahr": "year",
    "jahren": "year",
    "jahre": "year",
    "year": "year",
    "years": "year",
}
_UNITS = "|".join(sorted(_UNIT, key=len, reverse=True))
_RULES = (  # (pattern, kind); tried in order, the first match wins
    (
        r"\b(?:in den|während der|in the|during the|over the|within the)\s+(?:letzten|vergangenen|past|last)\s+"
        + _COUNT
        + r"\s+(?P<unit>"
        + _UNITS
        + r")\b",
        "last_n",
    ),
    (r"\b(?:seit|since)\s+(?:(?:dem|the)\s+)?(?:(?P<m>" + _MONTH_NAMES + r")\s+)?(?P<y>(?:19|20)\d{2})\b", "since"),
    (r"\b(?:vor|before)\s+(?:(?P<m>" + _MONTH_NAMES + r")\s+)?(?P<y>(?:19|20)\d{2})\b", "before"),
    (r"\b(?:im|in|in the month of)\s+(?P<m>" + _MONTH_NAMES + r")(?:\s+(?P<y>(?:19|20)\d{2}))?\b", "month"),
    (r"\b(?:im jahr|im jahre|in the year|in|im)\s+(?P<y>(?:19|20)\d{2})\b", "year"),
    (r"\b(?:im letzten|in the last|in the past|im vergangenen)\s+(?P<unit>monat|month|jahr|year)\b", "last_1"),
    (
        r"\b(?:letzte|letzten|vergangene|vergangenen|last|past)\s+(?P<unit>woche|week|monat|month|jahr|jahres|year)\b",
        "previous",
    ),
    (r"\b(?:diese|dieser|diesen|dieses|this)\s+(?P<unit>woche|week|monat|month|jahr|jahres|year)\b", "current"),
    (r"\b(?:heute|today)\b", "today"),
    (r"\b(?:gestern|yesterday)\b", "yesterday"),
)
_COMPILED = tuple((re.compile(p, re.I), kind) for p, kind in _RULES)


def question_period(question: str, today: date) -> tuple[date | None, date | None, str] | None:
    """The publication period a question names, relative to ``today``: (since, until, the words
    read), or None. Calendar units: "letzte Woche" is the calendar week before this one, "im
    Januar" without a year the latest January that has begun, "in den letzten 3 Monaten" the days
    since the same day three months ago."""
    for pattern, kind in _COMPILED:
        m = pattern.search(question)
        if m is None:
            continue
        groups = m.groupdict()
        month = MONTHS.get((groups.get("m") or "").lower())
        year = int(groups["y"]) if groups.get("y") else None
        unit = _UNIT.get((groups.get("unit") or "").lower().removesuffix("es") or "", None)
        unit = unit or {"jahres": "year"}.get((groups.get("unit") or "").lower())
        span: tuple[date | None, date | None] | None = None
        if kind == "last_n" or kind == "last_1":
            n = 1 if kind == "last_1" else int(groups["n"]) if groups["n"].isdigit() else _NUM[groups["n"].lower()]
            span = (_minus(today, n, unit or "day"), today)
        elif kind == "since":
            assert year is not None  # the pattern requires a year
            span = (date(year, month or 1, 1), today)
        elif kind == "before":
            assert year is not None  # the pattern requires a year
            span = (None, date(year, month or 1, 1) - timedelta(days=1))
        elif kind == "month":
            assert month is not None  # the pattern requires a month name (a key of MONTHS)
            if year is None:
                year = today.year if month <= today.month else today.year - 1
            span = (date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))
        elif kind == "year":
            assert year is not None  # the pattern requires a year
            span = (date(year, 1, 1), date(year, 12, 31))
        elif kind in ("previous", "current"):
            span = _calendar_unit(today, unit or "week", previous=kind == "previous")
        elif kind == "today":
            span = (today, today)
        elif kind == "yesterday":
            span = (today - timedelta(days=1), today - timedelta(days=1))
        if span is not None and (span[0] is None or span[0] <= today):
            return span[0], span[1], m.group(0)
    return None


def _minus(day: date, n: int, unit: str) -> date:
    if unit == "day":
        return day - timedelta(days=n)
    if unit == "week":
        return day - timedelta(weeks=n)
    months = n * (12 if unit == "year" else 1)
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _calendar_unit(today: date, unit: str, *, previous: bool) -> tuple[date, date]:
    if unit == "week":
        start = today - timedelta(days=today.weekday()) - (timedelta(weeks=1) if previous else timedelta(0))
        return start, (start + timedelta(days=6)) if previous else today
    if unit == "month":
        first = today.replace(day=1)
        if not previous:
            return first, today
        last = first - timedelta(days=1)
        return last.replace(day=1), last
    if not previous:
        return date(today.year, 1, 1), today
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
