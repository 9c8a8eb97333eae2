"""Absolute dates beside the relative days an answer repeats from an article.

"gestern" in an article published on 13 September 2023 is 12 September 2023: the answer
says "gestern (12. September 2023)". Only what the article's date makes certain is
resolved: heute, gestern, vorgestern, morgen, übermorgen (today, yesterday, tomorrow), and
a weekday with "vergangenen/letzten" (the latest before) or "kommenden/nächsten" (the next
after). A bare "am Dienstag" is left as written: it can be the last or the next one. The
quote stays verbatim; only the answer text gets the date.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_MONTHS_DE = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = {
    "montag": 0,
    "dienstag": 1,
    "mittwoch": 2,
    "donnerstag": 3,
    "freitag": 4,
    "samstag": 5,
    "sonntag": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_OFFSETS = {
    "heute": 0,
    "gestern": -1,
    "vorgestern": -2,
    "morgen": 1,
    "übermorgen": 2,
    "today": 0,
    "yesterday": -1,
    "tomorrow": 1,
}
_PAST = ("vergangenen", "letzten", "vorigen", "last", "past")
_NEXT = ("kommenden", "nächsten", "next", "coming")
# "heute", "gestern" ... as words; "morgen" only in lower case ("heute Morgen" is this morning)
_RELATIVE = re.compile(
    r"(?<![\w-])(heute|gestern|vorgestern|übermorgen|morgen|today|yesterday|tomorrow)(?![\w-])"
    r"(\s+(?:Morgen|Vormittag|Mittag|Nachmittag|Abend|Nacht|früh|morning|afternoon|evening|night)"
    r"(?![\w-]))?(?!\s*\()",
    re.I,
)
_WEEKDAY = re.compile(
    r"(?<![\w-])((?:am|den|on)\s+)?("
    + "|".join(_PAST + _NEXT)
    + r")\s+("
    + "|".join(_WEEKDAYS)
    + r")(?![\w-])(?!\s*\()",
    re.I,
)


def article_day(published: str, updated: str = "") -> date | None:
    """The day an article speaks from: its publication date, else its last update."""
    for value in (published, updated):
        if value:
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                continue
    return None


def format_day(day: date, language: str) -> str:
    if language == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.day}. {_MONTHS_DE[day.month - 1]} {day.year}"


def absolute_days(text: str, written: date | None, language: str) -> str:
    """``text`` with "(<date>)" after each relative day the article's date ``written`` makes certain."""
    if written is None:
        return text

    def relative(m: re.Match) -> str:
        word = m.group(1)
        if word.lower() == "morgen" and word != "morgen":  # "Morgen": the morning, or a sentence start
            return word
        return f"{word}{m.group(2) or ''} ({format_day(written + timedelta(days=_OFFSETS[word.lower()]), language)})"

    def weekday(m: re.Match) -> str:
        target = _WEEKDAYS[m.group(3).lower()]
        if m.group(2).lower() in _PAST:
            back = (written.weekday() - target) % 7 or 7
            day = written - timedelta(days=back)
        else:
            ahead = (target - written.weekday()) % 7 or 7
            day = written + timedelta(days=ahead)
        return f"{m.group(0)} ({format_day(day, language)})"

    return _RELATIVE.sub(relative, _WEEKDAY.sub(weekday, text))
