"""Dates in the shapes clinicians write them: 3/12, 3/12/21, 2021-03-12, 12 Mar, March 12th, '98.

Replaces Presidio's DateRecognizer, which flags "today" and misses two-digit years and
month/day without a year. Fractions and scores that look like month/day ("1/2 NS", "4/5
strength", "8/10 pain") are left alone.
"""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import ClinicalRecognizer, NoteStyle

MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
DAY = r"(?:0?[1-9]|[12]\d|3[01])"
MON = r"(?:0?[1-9]|1[0-2])"
ORDINAL = r"(?:st|nd|rd|th)?"
YEAR = r"(?:19|20)\d{2}"
# A year inside a full date may be a research-shifted one (MIMIC moves dates to 2100-2200):
# the day and month are still real elements, so the date is still PHI.
FULL_DATE_YEAR = r"(?:19|20|21)\d{2}"

# A machine timestamp is one date element: "2000-04-16 11:34:35", "2021-03-12T08:15:00Z". A clock
# time after a hand-written date ("3/12 0800") is not PHI and stays out.
ISO_TIMESTAMP = re.compile(rf"(?<![\d\-]){FULL_DATE_YEAR}-{MON}-{DAY}[ T]\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?:Z|[+\-]\d{{2}}:?\d{{2}})?(?!\d)")

PATTERNS: tuple[tuple[re.Pattern[str], float], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), score)
    for pattern, score in (
        # 03/12/2021, 3-12-21, 3.12.2021, 12/03/21 (day first)
        # (not inside ventilator settings: "600x20/5/50%")
        (rf"(?<![\d/.\-])(?<!\dx){MON}([/\-.]){DAY}\1(?:{FULL_DATE_YEAR}|\d{{2}})(?![\d/%])", 0.95),
        (rf"(?<![\d/.\-])(?<!\dx){DAY}([/\-.]){MON}\1(?:{FULL_DATE_YEAR}|\d{{2}})(?![\d/%])", 0.9),
        # 2021-03-12, 2021/3/12
        (rf"(?<!\d){FULL_DATE_YEAR}[/\-.]{MON}[/\-.]{DAY}(?!\d)", 0.95),
        # 3/2021, 03/21 (month/year)
        (rf"(?<![\d/]){MON}/{YEAR}(?![\d/])", 0.85),
        # March 12, Mar 12th 2021, Mar. 12, '21
        (rf"\b{MONTH}\.?[ \t]*{DAY}{ORDINAL}(?:,?[ \t]*(?:{YEAR}|'\d{{2}}))?(?![\d:])", 0.9),
        # 12 March 2021, 12th of March, 12-Mar-21
        (rf"\b{DAY}{ORDINAL}(?:[ \t]+of)?[ \t\-]*{MONTH}\b\.?(?:,?[ \t\-]*(?:{YEAR}|'?\d{{2}}(?!\d)))?", 0.9),
        # March 2021, Mar '21
        (rf"\b{MONTH}\.?,?[ \t]+(?:{YEAR}|'\d{{2}})\b", 0.9),
        # Months written out on their own (not "may", which is a verb)
        (r"\b(?:january|february|march|april|june|july|august|september|october|november|december)\b", 0.6),
        (r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b", 0.5),
        (r"\b(?:christmas|thanksgiving|easter|new year's|hanukkah|halloween)(?: day| eve)?\b", 0.6),
        # '98, in '05
        (r"(?<![\w'])'\d{2}\b", 0.7),
    )
)
# 3/12 with no year: a date unless it is a fraction, a score or a ratio. A header's colon or a
# dash may lead in ("HX:8/30", "UO-9/10") when a letter, not a number, stands before it.
MONTH_DAY = re.compile(rf"(?<![\d/.])(?<!\d[:\-]){MON}/{DAY}(?![\d/%]|\.\d)")
# 8/87, 11/92: month and two-digit year, told from month/day by a "day" no month has.
MONTH_YEAR_SHORT = re.compile(r"(?<![\d/.])(?<!\d[:\-])(?:0?[1-9]|1[0-2])/(?:3[2-9]|[4-9]\d)(?![\d/%]|\.\d)")
# 6/30-7/2: a range of two month/days is a date range, whatever the context.
MONTH_DAY_RANGE = re.compile(rf"(?<![\d/.])(?<!\d[:\-]){MON}/{DAY}[ \t]*-[ \t]*{MON}/{DAY}(?![\d/%]|\.\d)")
# CVA 74', appendectomy 81': a two-digit year with the apostrophe after it. A distance walked in
# feet ("ambulated 20' with PT") has the same shape, so a walking word before it rules it out.
TRAILING_APOSTROPHE_YEAR = re.compile(r"(?<![\w'.])\d{2}'(?![\w'\"])")
WALKING_BEFORE = re.compile(r"\b(?:amb\w*|walk\w*|feet|ft|distance|hall\w*|gait)\b[^.\n]*$", re.IGNORECASE)
YEAR_ONLY = re.compile(rf"(?<![\d.,$#\-]){YEAR}(?![\d.,]\d|\s*(?:ml|cc|mg|mcg|kcal|cal|units?|u\b|l\b|g\b|x\b|/))", re.IGNORECASE)
# Whole words only: "cardiac" holds "ac" and "events" holds "vent", and neither makes 10/6 a ratio.
NOT_A_DATE_NEARBY = re.compile(
    r"(?<![a-z])(?:strength|motor|pain|scale|score|gcs|ns|tabs?|tablets?|assist|sliding|grip|pulses?|breaths?|murmur|x\s*\d|"
    r"dilution|ratio|i:e|grade|out of|cm|mm|mg|ml|sec|flow|edema|drops|of|cpap|bipap|peep|psv?|vent|"
    r"simv|ac|fio2|settings|h2o|perrla|perla|perl|pupils?)(?![a-z])|/10",
    re.IGNORECASE,
)
DATE_CONTEXT = re.compile(
    r"\b(?:on|since|from|until|till|thru|through|by|dated?|admitted|admission|adm|discharged?|d/c|dc|seen|"
    r"s/p|born|dob|starting|started|from|in|last|next|of|before|after|placed|removed|changed|inserted|stopped|held|"
    r"given|done|performed|drawn|sent|obtained|extubated|intubated|transferred|f/u|fu|visit|appt|surgery|op)[ :]*$",
    re.IGNORECASE,
)
TIME_BEFORE = re.compile(r"(?:@|~|\bat|\buntil|\btill|\baround)[ \t]*(?:approx\.?|approximately)?[ \t]*$", re.IGNORECASE)
TIME_AFTER = re.compile(r"[ \t]*(?:hrs?\b|h\b|hours\b|pm\b|am\b|o'clock|-[ \t]*\d{4}\b)", re.IGNORECASE)
# 3-12 is a range ("HR 80-90", "in 2-3 days") unless a date word leads in and no unit follows:
# "came from rehab on 4-3", "last BM 11-29", "intubated 3-14 at OSH".
MONTH_DAY_DASH = re.compile(rf"(?<![\d/.:\-]){MON}-{DAY}(?![\d\-/%]|\.\d)")
DASH_DATE_CONTEXT = re.compile(
    r"\b(?:on|since|until|till|dated?|admitted|adm|discharged|d/c'?d|dob|started|stopped|placed|removed|changed|"
    r"inserted|extubated|intubated|transferred|last bm|last seen|seen|due|scheduled for|planned for|f/u|"
    r"surgery|cath|done)[ :]*$",
    re.IGNORECASE,
)
RANGE_UNIT_AFTER = re.compile(
    r"[ \t]*(?:hrs?|hours?|days?|d\b|wks?|weeks?|months?|mos?|yrs?|years?|min|mins|l\b|lpm|liters?|%|x\b|times|"
    r"s\b|mg|mcg|meq|units?|cc|ml|/|mm|cm|kg|lbs?|beats|bpm|breaths|am\b|pm\b|o'clock|pts?\b|points?|"
    r"[a-z]+s\b)",  # a count of things: "on 2-3 occasions"
    re.IGNORECASE,
)
# "on the 5th", "the 21st of"
ORDINAL_DAY = re.compile(
    r"\b(?:on|since|until|by|before|after)[ \t]+the[ \t]+(?P<day>(?:[12]?\d|3[01])(?:st|nd|rd|th))\b|"
    r"\bthe[ \t]+(?P<day2>(?:[12]?\d|3[01])(?:st|nd|rd|th))[ \t]+of\b",
    re.IGNORECASE,
)
# Ventilator settings are written as pairs ("CPAP 5/10", "SIMV 700x10, 50%, 5/5"): a pair after a
# ventilator word in the same sentence is a setting, not a date.
VENT_BEFORE = re.compile(
    r"(?<![a-z])(?:cpap|bipap|peep|ps|psv|simv|imv|ac|a/c|pcv?|prvc|vent|vented|ventilator|fio2|tv|rr|mode|settings?)"
    r"(?![a-z])",
    re.IGNORECASE,
)
SENTENCE_BREAK = re.compile(r"[.;!?](?=\s)|\n")
SCORE_WORDS = re.compile(r"pain|score|scale|discomfort|ache|relief|rates?\b|rated|severity", re.IGNORECASE)
FRACTIONS = frozenset({"1/2", "1/3", "2/3", "1/4", "3/4", "1/8", "3/8", "2/4", "5/5"})


class DateRecognizer(ClinicalRecognizer):
    ENTITIES = (Entity.DATE.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = [
            self.result(match.start(), match.end(), Entity.DATE.value, score)
            for pattern, score in PATTERNS
            for match in pattern.finditer(text)
        ]
        for pattern in (MONTH_DAY, MONTH_YEAR_SHORT):
            for match in pattern.finditer(text):
                if self._month_day_is_date(text, match):
                    results.append(self.result(match.start(), match.end(), Entity.DATE.value, 0.7))
        for match in MONTH_DAY_RANGE.finditer(text):
            if not any(part.strip() in FRACTIONS for part in match.group().split("-")):
                results.append(self.result(match.start(), match.end(), Entity.DATE.value, 0.7))
        for match in TRAILING_APOSTROPHE_YEAR.finditer(text):
            if not WALKING_BEFORE.search(text, max(0, match.start() - 30), match.start()):
                results.append(self.result(match.start(), match.end() - 1, Entity.DATE.value, 0.6))
        for match in MONTH_DAY_DASH.finditer(text):
            lead_in = text[max(0, match.start() - 18) : match.start()]
            if DASH_DATE_CONTEXT.search(lead_in) and not RANGE_UNIT_AFTER.match(text, match.end()):
                results.append(self.result(match.start(), match.end(), Entity.DATE.value, 0.65))
        for match in YEAR_ONLY.finditer(text):
            if not self._military_time(text, match):
                results.append(self.result(match.start(), match.end(), Entity.DATE.value, 0.5))
        for match in ORDINAL_DAY.finditer(text):
            group = "day" if match.group("day") else "day2"
            results.append(self.result(*match.span(group), Entity.DATE.value, 0.6))
        results += [self.result(*m.span(), Entity.DATE.value, 0.95) for m in ISO_TIMESTAMP.finditer(text)]
        return results

    @staticmethod
    def _military_time(text: str, match: re.Match[str]) -> bool:
        """Nursing notes give times as 1930 or 2000 ("at 2000", "@1930", "2000 hrs"), not years."""
        if int(match.group()[2:]) >= 60:
            return False
        before = text[max(0, match.start() - 16) : match.start()]
        return bool(TIME_BEFORE.search(before) or TIME_AFTER.match(text, match.end()))

    @staticmethod
    def _month_day_is_date(text: str, match: re.Match[str]) -> bool:
        before = text[max(0, match.start() - 18) : match.start()]
        after = text[match.end() : match.end() + 14]
        if match.group() in FRACTIONS and NOT_A_DATE_NEARBY.match(after.lstrip()):
            return False  # "on 1/2 NS": a dose, whatever leads in
        if DATE_CONTEXT.search(before):
            return True
        if match.group() in FRACTIONS:
            return False
        if VENT_BEFORE.search(SENTENCE_BREAK.split(text[max(0, match.start() - 30) : match.start()])[-1]):
            return False
        if match.group().endswith("/10") and SCORE_WORDS.search(_same_sentence(text, match.start(), match.end())):
            return False  # "reports 4/10 incisional pain, relief to 2/10": a pain score, not April 10
        return not (NOT_A_DATE_NEARBY.search(after) or NOT_A_DATE_NEARBY.search(before[-8:]))


def _same_sentence(text: str, start: int, end: int, reach: int = 40) -> str:
    """Up to ``reach`` characters either side of a match, cut at the sentence's own ends."""
    before = SENTENCE_BREAK.split(text[max(0, start - reach) : start])[-1]
    after = SENTENCE_BREAK.split(text[end : end + reach])[0]
    return before + text[start:end] + after
