"""HL7 v2 segments as data: delimiters, escapes, leaves addressed by position, and TS dates.

The project parses HL7 v2 itself rather than through a PyPI library: the grammar is small
(segments of fields, repetitions, components, subcomponents and a handful of escapes), and a
de-identifier needs what libraries tend to normalise away: every untouched leaf written back
byte for byte, each segment's own line ending, the sender's delimiters, and escape sequences
it does not understand kept as they were. Leaves stay in their escaped wire form; only a
leaf that is read for PHI is decoded, and only one that is replaced is encoded again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from deid.anonymize.date_shift import shift_fhir_date

HEADER_SEGMENTS = frozenset({"MSH", "FHS", "BHS"})  # the segments whose field 1 is the separator itself
SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
# YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]: the precision is whatever the sender wrote.
_TS = re.compile(r"(?P<y>\d{4})(?P<m>\d{2})?(?P<d>\d{2})?(?P<time>\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,4})?)?)?)?(?P<zone>[+-]\d{4})?")
# Escapes that carry formatting or character-set switches: kept verbatim, never decoded.
_KEPT_ESCAPE = re.compile(r"[HN]|\.(?:sp|in|ti|sk|ce|fi|nf)[+-]?\d*|[ZCM][0-9A-Fa-f]*")


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @classmethod
    def from_header(cls, line: str) -> Delimiters:
        """The delimiters an MSH/FHS/BHS segment declares. A doubled escape character
        ("^~\\\\&", as some exporters write it) still means component, repetition, escape,
        subcomponent: the subcomponent is the first character after the escape that differs."""
        if len(line) < 4 or line[:3] not in HEADER_SEGMENTS:
            raise ValueError("not a header segment")
        separator = line[3]
        declared = line[4:].split(separator, 1)[0]
        component = declared[0] if len(declared) > 0 else "^"
        repetition = declared[1] if len(declared) > 1 else "~"
        escape = declared[2] if len(declared) > 2 else "\\"
        rest = [ch for ch in declared[3:] if ch != escape]
        subcomponent = rest[0] if rest else "&"
        if len({separator, component, repetition, escape, subcomponent}) != 5 or any(ch.isalnum() for ch in declared[:3]):
            raise ValueError("encoding characters are not five distinct delimiters")
        return cls(separator, component, repetition, escape, subcomponent)


def unescape(raw: str, delimiters: Delimiters) -> str:
    """The text of one leaf: delimiter escapes, hex bytes and line breaks decoded; formatting
    escapes and anything unrecognised or unterminated kept as written."""
    esc = delimiters.escape
    if esc not in raw:
        return raw
    out: list[str] = []
    index = 0
    while index < len(raw):
        ch = raw[index]
        end = raw.find(esc, index + 1) if ch == esc else -1
        if end < 0:
            out.append(ch)
            index += 1
            continue
        body = raw[index + 1 : end]
        decoded = _decode_escape(body, delimiters)
        if decoded is None:
            out.append(raw[index : end + 1])
        else:
            out.append(decoded)
        index = end + 1
    return "".join(out)


def _decode_escape(body: str, delimiters: Delimiters) -> str | None:
    simple = {"F": delimiters.field, "S": delimiters.component, "T": delimiters.subcomponent,
              "R": delimiters.repetition, "E": delimiters.escape, ".br": "\n"}
    if body in simple:
        return simple[body]
    if body.startswith("X") and len(body) > 1 and len(body) % 2 == 1:
        try:
            data = bytes.fromhex(body[1:])
        except ValueError:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return None


def escape(text: str, delimiters: Delimiters) -> str:
    """The wire form of a replaced leaf. An escape sequence that ``unescape`` kept verbatim
    is written back verbatim; every other delimiter character is escaped."""
    esc = delimiters.escape
    table = {delimiters.field: "F", delimiters.component: "S", delimiters.subcomponent: "T",
             delimiters.repetition: "R", "\n": ".br", "\r": "X0D"}
    out: list[str] = []
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == esc:
            end = text.find(esc, index + 1)
            if end > 0 and _KEPT_ESCAPE.fullmatch(text[index + 1 : end]):
                out.append(text[index : end + 1])
                index = end + 1
                continue
            out.append(f"{esc}E{esc}")
        elif ch in table:
            out.append(f"{esc}{table[ch]}{esc}")
        else:
            out.append(ch)
        index += 1
    return "".join(out)


Address = tuple[int, int, int, int]  # field, repetition, component, subcomponent; all 1-based


@dataclass(slots=True)
class Segment:
    """One segment; ``fields[n]`` is field n in the standard's numbering (MSH-2 is the
    encoding characters), each a list of repetitions of components of raw subcomponents."""

    name: str
    fields: list[list[list[list[str]]]]
    ending: str
    line: int
    delimiters: Delimiters = field(default_factory=Delimiters)

    @classmethod
    def parse(cls, text: str, ending: str, line: int, delimiters: Delimiters) -> Segment:
        d = delimiters
        name = text[:3]
        if name in HEADER_SEGMENTS:
            parts = text[4:].split(d.field)
            raw_fields = [name, d.field, *parts]  # MSH-1 is the separator, MSH-2 the encoding characters
        else:
            raw_fields = text.split(d.field)
        fields: list[list[list[list[str]]]] = []
        for number, raw in enumerate(raw_fields):
            if number == 0 or (name in HEADER_SEGMENTS and number in (1, 2)):
                fields.append([[[raw]]])
                continue
            fields.append(
                [[component.split(d.subcomponent) for component in rep.split(d.component)] for rep in raw.split(d.repetition)]
            )
        return cls(name, fields, ending, line, delimiters)

    def render(self) -> str:
        d = self.delimiters
        texts = []
        for number, reps in enumerate(self.fields):
            if number == 0 or (self.name in HEADER_SEGMENTS and number in (1, 2)):
                texts.append(reps[0][0][0])
                continue
            texts.append(d.repetition.join(d.component.join(d.subcomponent.join(c) for c in rep) for rep in reps))
        if self.name in HEADER_SEGMENTS:
            return self.name + d.field + d.field.join(texts[2:])
        return d.field.join(texts)

    def repetitions(self, number: int) -> int:
        return len(self.fields[number]) if number < len(self.fields) else 0

    def components(self, number: int, repetition: int) -> int:
        return len(self.fields[number][repetition - 1]) if repetition <= self.repetitions(number) else 0

    def raw(self, address: Address) -> str:
        number, rep, comp, sub = address
        try:
            return self.fields[number][rep - 1][comp - 1][sub - 1]
        except IndexError:
            return ""

    def text(self, address: Address) -> str:
        return unescape(self.raw(address), self.delimiters)

    def set_text(self, address: Address, value: str) -> None:
        number, rep, comp, sub = address
        self.fields[number][rep - 1][comp - 1][sub - 1] = escape(value, self.delimiters)

    def leaves(self, number: int, repetition: int, component: int) -> list[Address]:
        """The non-empty subcomponents of one component."""
        if component > self.components(number, repetition):
            return []
        subs = self.fields[number][repetition - 1][component - 1]
        return [(number, repetition, component, i + 1) for i, raw in enumerate(subs) if raw.strip()]

    def all_leaves(self) -> list[Address]:
        found = []
        first = 3 if self.name in HEADER_SEGMENTS else 1
        for number in range(first, len(self.fields)):
            for rep in range(1, self.repetitions(number) + 1):
                for comp in range(1, self.components(number, rep) + 1):
                    found.extend(self.leaves(number, rep, comp))
        return found


def parse_ts(value: str) -> re.Match[str] | None:
    """A match when ``value`` is an HL7 TS/DT/DTM with a real calendar date, else None."""
    match = _TS.fullmatch(value.strip())
    if match is None:
        return None
    try:
        date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
    except ValueError:
        return None
    time = match["time"] or ""
    if time and (int(time[:2]) > 23 or (len(time) >= 4 and int(time[2:4]) > 59) or (len(time) >= 6 and int(time[4:6]) > 60)):
        return None
    return match


def shift_ts(value: str, offset_days: int) -> str | None:
    """An HL7 TS moved by ``offset_days`` at its own precision, time and zone kept; None
    when ``value`` is not one."""
    match = parse_ts(value)
    if match is None:
        return None
    iso = match["y"] + (f"-{match['m']}" if match["m"] else "") + (f"-{match['d']}" if match["d"] else "")
    moved = shift_fhir_date(iso, offset_days).replace("-", "")
    stripped = value.strip()
    return value.replace(stripped, moved + (match["time"] or "") + (match["zone"] or ""), 1)


def looks_like_date(value: str) -> bool:
    """A leaf of an unknown segment that is a dated timestamp (a day at least), not a bare code."""
    match = parse_ts(value)
    return match is not None and match["d"] is not None and 1800 <= int(match["y"]) <= 2200
