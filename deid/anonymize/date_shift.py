"""Shift dates by a fixed number of days while writing them back exactly as they were written.

Clinicians write "03/14/2021", "3/14/21", "14 Mar 2021", "MARCH 14TH", "2021-03-14T10:09:01-05:00".
A shifted date that suddenly reads "2021-04-02" in a note full of "m/d/yy" would both look wrong
to a model trained on it and hint at where substitution happened, so every component keeps its
width, zero padding, case, ordinal suffix and separators. Only the components that were present
are written; missing ones are anchored (day 15, year 2000) so intervals still move together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MON = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])"
)
_ORD = r"(?P<ord>st|nd|rd|th)?"
_YEAR_ANCHOR = 2001  # a common year, so "3/14" minus 14 days is "2/28" as most readers expect
_LEAP_ANCHOR = 2000  # only for "2/29" written without a year
_DAY_ANCHOR = 15

# Order matters only for ties: the leftmost, then longest match wins.
_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"(?<!\d)(?P<y>\d{4})(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?!\d)",
        r"(?<![\d/.-])(?P<m>\d{1,2})(?P<s>[-/.])(?P<d>\d{1,2})(?P=s)(?P<y>\d{4}|\d{2})(?![\d/.-]?\d)",
        r"(?<!\d)(?P<d>\d{1,2})" + _ORD + r"(?:\s*(?:of\s+)?|-)" + _MON + r"\.?(?:,?\s*|-)(?P<y>\d{4}|'\d{2})?(?!\d)",
        _MON + r"\.?\s*(?P<d>\d{1,2})" + _ORD + r"(?!\d)(?:,?\s*(?P<y>\d{4}|'\d{2})(?!\d))?",
        _MON + r"\.?,?\s*(?P<y>\d{4}|'\d{2})(?!\d)",
        r"(?<![\d/])(?P<m>\d{1,2})/(?P<y>\d{4})(?!\d)",
        r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{2})(?![\d-])",
        r"(?<![\d/.-])(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])",
        r"(?<!\d)(?P<y>(?:1[89]|20)\d{2})(?!\d)",
        r"(?<![a-z])" + _MON,
    )
)


@dataclass(frozen=True, slots=True)
class _Parsed:
    value: date
    day_first: bool


def _month_number(token: str) -> int:
    key = token.lower()[:3]
    return next(i for i, name in enumerate(_MONTHS, 1) if name.startswith(key))


def _expand_year(text: str) -> int:
    digits = text.lstrip("'")
    if len(digits) == 4:
        return int(digits)
    two = int(digits)
    return 2000 + two if two <= 40 else 1900 + two


def _parse(match: re.Match[str]) -> _Parsed | None:
    groups = match.groupdict()
    year = _expand_year(groups["y"]) if groups.get("y") else _YEAR_ANCHOR
    if groups.get("mon"):
        month = _month_number(groups["mon"])
    elif groups.get("m"):
        month = int(groups["m"])
    else:  # a bare year: anchor mid-year so a shift rarely changes it
        month = 7
    day = int(groups["d"]) if groups.get("d") else (_DAY_ANCHOR if month != 7 or groups.get("m") else 2)
    day_first = False
    if groups.get("m") and groups.get("d") and month > 12 >= day:
        month, day, day_first = day, month, True
    try:
        return _Parsed(date(year, month, day), day_first)
    except ValueError:
        if groups.get("y") or (month, day) != (2, 29):
            return None
        return _Parsed(date(_LEAP_ANCHOR, month, day), day_first)


def _same_case(template: str, word: str) -> str:
    if template.isupper():
        return word.upper()
    if template.islower():
        return word.lower()
    return word.capitalize()


def _ordinal(day: int, template: str) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return suffix.upper() if template.isupper() else suffix


def _zero_padded(groups: dict[str, str | None]) -> bool:
    """Whether numeric day/month were written with leading zeros ("03/14" yes, "3/14" no, "12/14" assume yes)."""
    numeric = [part for name in ("m", "d") if (part := groups.get(name))]
    if any(part.startswith("0") for part in numeric):
        return True
    return len(numeric) == 2 and all(len(part) == 2 for part in numeric)


def _render(match: re.Match[str], parsed: _Parsed, new: date) -> str:
    groups = match.groupdict()
    replacements: dict[str, str] = {}
    month_key, day_key = ("d", "m") if parsed.day_first else ("m", "d")
    width = 2 if _zero_padded(groups) else 1
    if groups.get(month_key):
        replacements[month_key] = f"{new.month:0{width}d}"
    if groups.get(day_key):
        replacements[day_key] = f"{new.day:0{width}d}"
    if groups.get("y"):
        original = groups["y"]
        digits = original.lstrip("'")
        prefix = original[: len(original) - len(digits)]
        replacements["y"] = prefix + (f"{new.year:04d}" if len(digits) == 4 else f"{new.year % 100:02d}")
    if groups.get("mon"):
        original = groups["mon"]
        full = _MONTHS[new.month - 1]
        written_in_full = len(original) > 3 and original.lower() == _MONTHS[_month_number(original) - 1]
        word = full if written_in_full else full[:3]
        replacements["mon"] = _same_case(original, word)
    if groups.get("ord"):
        replacements["ord"] = _ordinal(new.day, groups["ord"])
    text = match.group(0)
    base = match.start()
    for name in sorted(replacements, key=lambda g: match.start(g), reverse=True):
        start, end = match.start(name) - base, match.end(name) - base
        text = text[:start] + replacements[name] + text[end:]
    return text


def _matches(text: str) -> list[tuple[re.Match[str], _Parsed]]:
    """Leftmost-longest, non-overlapping date matches that are real calendar dates."""
    candidates = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            parsed = _parse(match)
            if parsed is not None:
                candidates.append((match, parsed))
    candidates.sort(key=lambda item: (item[0].start(), -(item[0].end() - item[0].start())))
    chosen: list[tuple[re.Match[str], _Parsed]] = []
    cursor = 0
    for match, parsed in candidates:
        if match.start() >= cursor:
            chosen.append((match, parsed))
            cursor = match.end()
    return chosen


def shift_dates_in(text: str, offset_days: int) -> str | None:
    """Every date in ``text`` moved by ``offset_days``, formats kept; None if no date was recognised."""
    found = _matches(text)
    if not found:
        return None
    delta = timedelta(days=offset_days)
    pieces: list[str] = []
    cursor = 0
    for match, parsed in found:
        pieces.append(text[cursor : match.start()])
        pieces.append(_render(match, parsed, parsed.value + delta))
        cursor = match.end()
    pieces.append(text[cursor:])
    return "".join(pieces)


_FHIR_DATE = re.compile(r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?(?P<rest>T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?")


def is_fhir_date(value: str) -> bool:
    return _FHIR_DATE.fullmatch(value) is not None


def shift_fhir_date(value: str, offset_days: int) -> str:
    """A FHIR date/dateTime/instant moved by ``offset_days`` at its own precision (time kept)."""
    match = _FHIR_DATE.fullmatch(value)
    if match is None:
        raise ValueError("not a FHIR date")
    year = int(match["y"])
    month = int(match["m"]) if match["m"] else 7
    day = int(match["d"]) if match["d"] else (_DAY_ANCHOR if match["m"] else 2)
    new = date(year, month, day) + timedelta(days=offset_days)
    text = f"{new.year:04d}"
    if match["m"]:
        text += f"-{new.month:02d}"
    if match["d"]:
        text += f"-{new.day:02d}"
    return text + (match["rest"] or "")
