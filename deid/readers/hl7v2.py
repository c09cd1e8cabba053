"""HL7 v2 files: single messages, many messages, MLLP-framed streams and FHS/BHS batch files.

Each message is one unit (so a batch file of a million messages streams, and a killed run
resumes at the message where it stopped); batch and file header and trailer segments are
units of their own. Identity fields are replaced by position (see :mod:`hl7v2_fields`), every
timestamp of a message moves by its patient's offset at the precision it was written with,
and the message's prose (OBX-5 of text types, NTE, comments) is scanned as one text with
the patient's own PID identity as known PHI. The output keeps the sender's delimiters, the
segment sequence, each segment's line ending and the MLLP framing bytes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO

from deid.anonymize.operators import CORPUS_SCOPE, AppliedSpan
from deid.detection.entities import Entity
from deid.detection.known_phi import KnownPhi
from deid.malformed import Malformed, MalformedReason
from deid.readers.base import ReaderContext, RecordFormat, Unit, UnitResult
from deid.readers.hl7_text import (
    facility_surrogate,
    patient_scope,
    person_surrogate,
    scrub_pieces,
)
from deid.readers.hl7v2_fields import (
    CODED_TEXT_COMPONENTS,
    CODED_TYPES,
    DATE_TYPES,
    OPAQUE_TYPES,
    PLAIN_TYPES,
    SEGMENT_RULES,
    TEXT_TYPES,
    TYPED_IDENTITY,
    Kind,
)
from deid.readers.hl7v2_message import (
    HEADER_SEGMENTS,
    SEGMENT_ID,
    Address,
    Delimiters,
    Segment,
    looks_like_date,
    parse_ts,
    shift_ts,
)

MLLP_START = b"\x0b"
MLLP_END = "\x1c"
# One message larger than this is refused (reported), so memory stays bounded.
MAX_MESSAGE_BYTES = 16 << 20
UNIT_STARTS = frozenset({"MSH", "FHS", "BHS", "BTS", "FTS"})
_CHUNK = 1 << 20
_EOL = re.compile(rb"\r\n|\r|\n")
_LINE = re.compile(r"(?P<body>[^\r\n]*)(?P<end>\r\n|\r|\n|$)")
_OID = re.compile(r"[0-2](?:\.\d+)+")
_SSN_TYPES = frozenset({"SS", "SSN"})
_MRN_TYPES = frozenset({"MR", "MRN", "PI", "PT"})


def _lines(handle: BinaryIO, start: int) -> Iterator[tuple[bytes, int]]:
    """Raw lines with their own ending (CR, LF or CRLF) and the byte offset after each."""
    handle.seek(start)
    base = start
    buffer = b""
    while True:
        chunk = handle.read(_CHUNK)
        buffer += chunk
        position = 0
        while True:
            match = _EOL.search(buffer, position)
            if match is None or (chunk and match.end() == len(buffer) and match.group() == b"\r"):
                if len(buffer) - position > MAX_MESSAGE_BYTES:  # no line ends: pass it on in pieces, memory stays bounded
                    yield buffer[position:], base + len(buffer)
                    position = len(buffer)
                break  # a CR at the end of a chunk may be the first half of a CRLF
            yield buffer[position : match.end()], base + match.end()
            position = match.end()
        base += position
        buffer = buffer[position:]
        if not chunk:
            if buffer:
                yield buffer, base + len(buffer)
            return


def _starts_unit(raw: bytes) -> bool:
    head = raw[1:4] if raw.startswith(MLLP_START) else raw[:3]
    return head.decode("latin-1") in UNIT_STARTS


class Hl7v2Format(RecordFormat):
    name = "hl7v2"

    def units(self, path: Path, source: str, start: int, start_line: int) -> Iterator[tuple[Unit, int, int]]:
        """Messages from ``start``; lines are counted as segments, so positions name the
        line a message (or a malformed segment) starts on."""
        group: list[bytes] = []
        size = 0
        first = start_line + 1
        line = start_line
        end = start
        with open(path, "rb") as handle:
            for raw, offset in _lines(handle, start):
                if group and _starts_unit(raw):
                    yield Unit(source, f"{source}:{first}", (b"".join(group) if size <= MAX_MESSAGE_BYTES else None, first)), end, line
                    group, size, first = [], 0, line + 1
                line += 1
                end = offset
                size += len(raw)
                if size <= MAX_MESSAGE_BYTES:
                    group.append(raw)
        if group:
            yield Unit(source, f"{source}:{first}", (b"".join(group) if size <= MAX_MESSAGE_BYTES else None, first)), end, line

    def transform(self, unit: Unit, context: ReaderContext) -> UnitResult:
        raw, first_line = unit.data
        if raw is None:
            too_large = Malformed(unit.position, MalformedReason.too_large, f"message larger than {MAX_MESSAGE_BYTES >> 20} MiB")
            return UnitResult(b"", malformed=[too_large])
        encoding = "utf-8"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "latin-1"  # HL7 v2's default 8-bit character set (MSH-18 8859/1)
            text = raw.decode("latin-1")
        parsed = _parse_message(text, unit.source, first_line)
        if isinstance(parsed, Malformed):
            return UnitResult(b"", malformed=[parsed])
        items = parsed
        segments = [item for item in items if isinstance(item, Segment)]
        if not segments:
            return UnitResult(raw)  # blank lines between messages pass through
        scrubber = MessageScrubber(context, segments, unit.position)
        applied = scrubber.run()
        out = "".join(item if isinstance(item, str) else item.render() + item.ending for item in items).encode(encoding)
        identity = scrubber.identity or unit.position
        return UnitResult(out, [context.document(unit.source, unit.position, identity, raw, out, applied)])


def _parse_message(text: str, source: str, first_line: int) -> list[str | Segment] | Malformed:
    """The message's lines as segments, or verbatim strings for framing and blank lines; or a
    PHI-free report naming the first line that is not a segment."""
    items: list[str | Segment] = []
    delimiters: Delimiters | None = None
    # Not str.splitlines: it also breaks at the MLLP framing characters (0x0b, 0x1c).
    for number, match in enumerate(_LINE.finditer(text)):
        body, ending = match["body"], match["end"]
        if not body and not ending:
            continue
        position = f"{source}:{first_line + number}"
        if body.startswith("\x0b"):
            items.append("\x0b")
            body = body[1:]
        if not body.strip() or body.strip() == MLLP_END:
            items.append(body + ending)
            continue
        name = body[:3]
        if not SEGMENT_ID.fullmatch(name):
            return Malformed(position, MalformedReason.bad_segment, "not an HL7 v2 segment (no three-character segment id)")
        if delimiters is None:
            if name in HEADER_SEGMENTS:
                try:
                    delimiters = Delimiters.from_header(body)
                except ValueError:
                    return Malformed(position, MalformedReason.bad_header, f"{name} does not declare its delimiters")
            elif name in UNIT_STARTS:
                delimiters = Delimiters()  # a batch or file trailer, written with the defaults
            else:
                return Malformed(position, MalformedReason.no_header, "message does not start with MSH, FHS or BHS")
        if len(body) > 3 and body[3] != delimiters.field:
            # the id may be text
            return Malformed(position, MalformedReason.bad_segment, "segment id not followed by the field separator")
        trailer = ""
        if body.endswith(MLLP_END):
            body, trailer = body[: -len(MLLP_END)], MLLP_END
        segment = Segment.parse(body, ending if not trailer else "", first_line + number, delimiters)
        items.append(segment)
        if trailer:
            items.append(trailer + ending)
    return items


@dataclass(slots=True)
class _Piece:
    segment: Segment
    address: Address
    text: str
    separator: str  # written before this piece when the message's prose is joined


@dataclass(slots=True)
class MessageScrubber:
    """One message: identity fields replaced in place, prose gathered and scanned once."""

    context: ReaderContext
    segments: list[Segment]
    position: str
    patient: str = CORPUS_SCOPE
    identity: str = ""
    known: list[KnownPhi] = field(default_factory=list)
    applied: list[AppliedSpan] = field(default_factory=list)
    pieces: list[_Piece] = field(default_factory=list)
    reference: date | None = None  # the message's own date, for the age cap

    def run(self) -> list[AppliedSpan]:
        self._find_patient()
        self._know_people()
        previous = ""
        for segment in self.segments:
            rules = SEGMENT_RULES.get(segment.name)
            separator = "\n" if segment.name == previous or (segment.name, previous) in (("NTE", "OBX"), ("OBX", "NTE")) else "\n\n"
            start = len(self.pieces)
            if rules is None:
                self._generic(segment)
            else:
                for number, kind in rules.items():
                    if number < len(segment.fields):
                        self._field(segment, number, kind)
            if len(self.pieces) > start:
                self.pieces[start].separator = separator
            previous = segment.name
        self._scan()
        return self.applied

    # ----- the patient -------------------------------------------------------------------
    def _find_patient(self) -> None:
        header = self.segments[0]
        if header.name in HEADER_SEGMENTS and len(header.fields) > 7:
            match = parse_ts(header.text((7, 1, 1, 1)))
            if match is not None:
                self.reference = date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
        pid = next((s for s in self.segments if s.name == "PID"), None)
        if header.name == "MSH" and len(header.fields) > 10:
            # with the position: feeds resend messages under one control id, and the ledger
            # (and a resumed run's look-up of what it already logged) needs one id per message
            self.identity = f"{self.position}/MSH-10/{header.text((10, 1, 1, 1))}"
        if pid is None:
            self.patient = f"hl7:{self.position}"
            return
        mrn = _patient_number(pid)
        if mrn:
            self.patient, known = patient_scope(self.context, mrn)
            self.known.extend(known)
        else:
            self.patient = f"hl7:{self.position}"
        for number, entity in ((2, Entity.MRN), (3, Entity.MRN), (4, Entity.MRN), (18, Entity.ACCOUNT), (19, Entity.SSN), (20, Entity.LICENSE)):
            for rep in range(1, pid.repetitions(number) + 1):
                self._know(pid.text((number, rep, 1, 1)), entity)
        for number in (13, 14):
            for rep in range(1, pid.repetitions(number) + 1):
                for comp in (1, 4, 7):
                    self._know(pid.text((number, rep, comp, 1)), Entity.PHONE if comp != 4 else Entity.EMAIL)
        for rep in range(1, pid.repetitions(11) + 1):
            for address in [*pid.leaves(11, rep, 1), *pid.leaves(11, rep, 2), *pid.leaves(11, rep, 3), *pid.leaves(11, rep, 5)]:
                self._know(pid.text(address), Entity.LOCATION)
        if pid.repetitions(7):
            self._know(pid.text((7, 1, 1, 1)), Entity.DATE)

    def _know_people(self) -> None:
        for segment in self.segments:  # relatives and clinicians the message names, wherever they recur
            for number, kind in SEGMENT_RULES.get(segment.name, {}).items():
                if number >= len(segment.fields):
                    continue
                if kind is Kind.PERSON:
                    self._know_name(segment, number, Entity.PATIENT)
                elif kind is Kind.STAFF:
                    for rep in range(1, segment.repetitions(number) + 1):
                        for comp in (2, 3):
                            for address in segment.leaves(number, rep, comp):
                                self._know(segment.text(address), Entity.CLINICIAN)

    def _know(self, value: str, entity: Entity) -> None:
        value = value.strip()
        if len(value) > 1:
            self.known.append(KnownPhi(value, entity.value))

    def _know_name(self, segment: Segment, number: int, entity: Entity) -> None:
        for rep in range(1, segment.repetitions(number) + 1):
            family = " ".join(segment.text(a) for a in segment.leaves(number, rep, 1))
            given = [segment.text(a) for comp in (2, 3) for a in segment.leaves(number, rep, comp)]
            for part in [family, *given]:
                self._know(part, entity)
            if family and given:
                self._know(f"{given[0]} {family}", entity)

    # ----- fields by kind ----------------------------------------------------------------
    def _field(self, segment: Segment, number: int, kind: Kind) -> None:
        for rep in range(1, segment.repetitions(number) + 1):
            self._repetition(segment, number, rep, kind)

    def _repetition(self, segment: Segment, number: int, rep: int, kind: Kind) -> None:
        leaves = segment.leaves
        if kind is Kind.PERSON or kind is Kind.STAFF:
            entity = Entity.PATIENT if kind is Kind.PERSON else Entity.CLINICIAN
            name_components = (1, 2, 3) if kind is Kind.PERSON else (2, 3, 4)
            for comp in name_components:
                for address in leaves(number, rep, comp):
                    self._replace(segment, address, entity)
            if kind is Kind.STAFF:
                for address in leaves(number, rep, 1):
                    self._pseudonymize(segment, address)
                for comp in (9, 14):
                    for address in leaves(number, rep, comp)[:1]:
                        self._replace(segment, address, Entity.HOSPITAL)
        elif kind is Kind.STAFF_NDL:
            for address in leaves(number, rep, 1):
                sub = address[3]
                if sub == 1:
                    self._pseudonymize(segment, address)
                elif sub in (2, 3, 4):
                    self._replace(segment, address, Entity.CLINICIAN)
            for comp in (2, 3):
                for address in leaves(number, rep, comp):
                    self._date(segment, address)
            for address in leaves(number, rep, 7)[:1]:
                self._replace(segment, address, Entity.HOSPITAL)
        elif kind is Kind.ADDRESS:
            for comp in (1, 2, 3, 8, 9, 10):
                for address in leaves(number, rep, comp):
                    self._replace(segment, address, Entity.LOCATION)
            for address in leaves(number, rep, 5):
                self._postal_code(segment, address)
            for comp in (12, 13):
                for address in leaves(number, rep, comp):
                    self._date(segment, address)
        elif kind is Kind.PHONE:
            for comp in (1, 4, 6, 7, 8, 9, 12):
                for address in leaves(number, rep, comp):
                    self._replace(segment, address, Entity.EMAIL if comp == 4 else Entity.PHONE)
        elif kind in (Kind.PATIENT_ID, Kind.ACCOUNT, Kind.VISIT, Kind.SSN):
            type_code = segment.text((number, rep, 5, 1)).strip().upper()
            entity = {Kind.ACCOUNT: Entity.ACCOUNT, Kind.VISIT: Entity.ID, Kind.SSN: Entity.SSN}.get(kind, Entity.MRN)
            if type_code in _SSN_TYPES:
                entity = Entity.SSN
            for comp in (1, 2):
                for address in leaves(number, rep, comp):
                    self._pseudonymize(segment, address, entity)
            for comp in (4, 6):
                for address in leaves(number, rep, comp)[:1]:
                    self._replace(segment, address, Entity.HOSPITAL)
            for comp in (7, 8):
                for address in leaves(number, rep, comp):
                    self._date(segment, address)
        elif kind is Kind.LICENSE:
            for address in leaves(number, rep, 1):
                self._pseudonymize(segment, address, Entity.LICENSE)
            for address in leaves(number, rep, 3):
                self._date(segment, address)
        elif kind is Kind.ENTITY_ID:
            for address in leaves(number, rep, 1):
                self._pseudonymize(segment, address)
        elif kind is Kind.TIMESTAMP:
            for comp in range(1, segment.components(number, rep) + 1):
                for address in leaves(number, rep, comp):
                    if segment.name == "PID" and number == 7:
                        self._birth_date(segment, address)
                    elif any(ch.isdigit() for ch in segment.raw(address)):
                        self._date(segment, address)
        elif kind is Kind.FACILITY:
            self._facility(segment, number, rep)
        elif kind is Kind.ORGANIZATION:
            for address in leaves(number, rep, 1):
                self._replace(segment, address, Entity.HOSPITAL)
            for comp in (3, 10):
                for address in leaves(number, rep, comp):
                    self._pseudonymize(segment, address)
            for address in leaves(number, rep, 6)[:1]:
                self._replace(segment, address, Entity.HOSPITAL)
        elif kind is Kind.LOCATION:
            for address in leaves(number, rep, 4)[:1]:
                self._replace(segment, address, Entity.HOSPITAL)
            for address in leaves(number, rep, 7):
                self._replace(segment, address, Entity.LOCATION)
            for address in leaves(number, rep, 9):
                self._piece(segment, address)
        elif kind is Kind.PLACE:
            for comp in range(1, segment.components(number, rep) + 1):
                for address in leaves(number, rep, comp):
                    self._replace(segment, address, Entity.LOCATION)
        elif kind is Kind.TEXT:
            for comp in range(1, segment.components(number, rep) + 1):
                for address in leaves(number, rep, comp):
                    self._piece(segment, address)
        elif kind is Kind.OBSERVATION:
            self._observation(segment, rep)

    def _facility(self, segment: Segment, number: int, rep: int) -> None:
        """HD: the namespace (component 1) names a facility; the universal id (2) is kept when
        it is an OID (it names an assigning authority), replaced when it is an IP address or
        a host name."""
        for address in segment.leaves(number, rep, 1)[:1]:
            self._replace(segment, address, Entity.HOSPITAL)
        for address in segment.leaves(number, rep, 2)[:1]:
            value = segment.text(address).strip()
            if _OID.fullmatch(value):
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError:
                self._pseudonymize(segment, address)
            else:
                self._replace(segment, address, Entity.IP_ADDRESS)

    def _observation(self, segment: Segment, rep: int) -> None:
        value_type = segment.text((2, 1, 1, 1)).strip().upper() if len(segment.fields) > 2 else ""
        number = 5
        if value_type in TEXT_TYPES or value_type == "":
            for comp in range(1, segment.components(number, rep) + 1):
                addresses = segment.leaves(number, rep, comp)
                if not addresses and value_type in TEXT_TYPES and comp == 1:
                    # an empty line of a report still separates paragraphs
                    self.pieces.append(_Piece(segment, (number, rep, 1, 1), "", "\n"))
                for address in addresses:
                    self._piece(segment, address)
        elif value_type in CODED_TYPES:
            for comp in CODED_TEXT_COMPONENTS:
                for address in segment.leaves(number, rep, comp):
                    self._piece(segment, address)
        elif value_type in DATE_TYPES:
            for comp in range(1, segment.components(number, rep) + 1):
                for address in segment.leaves(number, rep, comp):
                    self._date(segment, address)
        elif value_type in TYPED_IDENTITY:
            self._repetition(segment, number, rep, TYPED_IDENTITY[value_type])
        elif value_type in OPAQUE_TYPES:
            for comp in range(1, segment.components(number, rep) + 1):
                for address in segment.leaves(number, rep, comp):
                    self.applied.append(AppliedSpan(0, len(segment.raw(address)), "ATTACHMENT", "drop", _path(segment, address)))
                    segment.set_text(address, "")
        elif value_type not in PLAIN_TYPES:
            for comp in range(1, segment.components(number, rep) + 1):
                for address in segment.leaves(number, rep, comp):
                    self._piece(segment, address)

    def _generic(self, segment: Segment) -> None:
        """A segment the table does not know (Z-segments, site extensions): its timestamps are
        shifted and anything with a letter in it is read as prose."""
        for address in segment.all_leaves():
            raw = segment.raw(address)
            if looks_like_date(raw):
                self._date(segment, address)
            elif any(ch.isalpha() for ch in raw):
                self._piece(segment, address)

    # ----- replacements ------------------------------------------------------------------
    def _replace(self, segment: Segment, address: Address, entity: Entity) -> None:
        value = segment.text(address)
        if not value.strip():
            return
        if entity is Entity.HOSPITAL:
            replaced, operator = facility_surrogate(self.context, value, self.patient)
        elif entity in (Entity.PATIENT, Entity.CLINICIAN):
            replaced, operator = person_surrogate(self.context, value, entity.value, self.patient)
        else:
            replaced, operator = self.context.anonymizer.replace(value, entity.value, self.patient)
        segment.set_text(address, replaced)
        self.applied.append(AppliedSpan(0, len(value), entity.value, operator, _path(segment, address)))

    def _postal_code(self, segment: Segment, address: Address) -> None:
        """A postal code keeps its shape (digits, letters, blanks) so the field stays a postal code."""
        value = segment.text(address)
        anonymizer = self.context.anonymizer
        if anonymizer.redacting:
            self._replace(segment, address, Entity.LOCATION)
            return
        scope = anonymizer.scope(Entity.LOCATION.value, self.patient)
        segment.set_text(address, anonymizer.surrogates.identifier(value, scope))
        self.applied.append(AppliedSpan(0, len(value), Entity.LOCATION.value, "surrogate", _path(segment, address)))

    def _pseudonymize(self, segment: Segment, address: Address, entity: Entity = Entity.ID) -> None:
        """Identifiers become corpus-wide keyed fakes in every mode, so the same MRN or order
        number in an ADT, an ORU and a CCD still links them after de-identification."""
        value = segment.text(address)
        if not value.strip():
            return
        segment.set_text(address, self.context.anonymizer.surrogates.identifier(value, CORPUS_SCOPE))
        self.applied.append(AppliedSpan(0, len(value), entity.value, "pseudonymize", _path(segment, address)))

    def _date(self, segment: Segment, address: Address) -> None:
        value = segment.text(address)
        anonymizer = self.context.anonymizer
        shifted = shift_ts(value, anonymizer.date_offset(self.patient))
        if shifted is not None:
            anonymizer.surrogates.register(value, shifted)
            operator = "shift"
        else:
            shifted = anonymizer.structured_date(value, self.patient)
            operator = "shift"
            if shifted == value:  # not a date anyone can shift: a value in a date field is not kept
                shifted, operator = "", "drop"
        segment.set_text(address, shifted)
        self.applied.append(AppliedSpan(0, len(value), Entity.DATE.value, operator, _path(segment, address)))

    def _birth_date(self, segment: Segment, address: Address) -> None:
        """Safe Harbor: an age over 89 is one class, so such a birth date becomes the bare year
        of a 90-year-old at the message's date."""
        value = segment.text(address)
        match = parse_ts(value)
        reference = self.reference or date.today()
        if match is not None:
            born = date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
            age = reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
            if age > 89:
                segment.set_text(address, self.context.anonymizer.surrogates.register(value, f"{reference.year - 90:04d}"))
                self.applied.append(AppliedSpan(0, len(value), Entity.AGE_OVER_89.value, "age_cap", _path(segment, address)))
                return
        self._date(segment, address)

    def _piece(self, segment: Segment, address: Address) -> None:
        self.pieces.append(_Piece(segment, address, segment.text(address), "\n"))

    def _scan(self) -> None:
        if not self.pieces:
            return
        texts = [piece.text for piece in self.pieces]
        separators = [piece.separator for piece in self.pieces[1:]]
        scrubbed, applied = scrub_pieces(self.context, texts, separators, self.patient, self.known, "text")
        for piece, new in zip(self.pieces, scrubbed, strict=True):
            if new != piece.text:
                piece.segment.set_text(piece.address, new)
        self.applied.extend(applied)


def _patient_number(pid: Segment) -> str:
    """The patient's MRN: the PID-3 repetition typed MR (or PI/PT), else the first one."""
    first = ""
    for rep in range(1, pid.repetitions(3) + 1):
        value = pid.text((3, rep, 1, 1)).strip()
        if value and not first:
            first = value
        if value and pid.text((3, rep, 5, 1)).strip().upper() in _MRN_TYPES:
            return value
    return first or pid.text((2, 1, 1, 1)).strip()


def _path(segment: Segment, address: Address) -> str:
    number, rep, comp, sub = address
    return f"{segment.name}-{number}[{rep}].{comp}.{sub}"


def is_hl7v2(path: Path) -> bool:
    """Whether a file (of a text suffix or none) holds HL7 v2: MSH, FHS or BHS and a field
    separator at its start, after an optional MLLP start byte."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return False
    return looks_like_hl7v2(head.decode("latin-1"))


def looks_like_hl7v2(text: str) -> bool:
    """Whether text starts with an HL7 v2 header segment (after a BOM or MLLP start byte)."""
    head = text.removeprefix("\ufeff").removeprefix("\xef\xbb\xbf").removeprefix("\x0b")
    return len(head) >= 5 and head[:3] in HEADER_SEGMENTS and not head[3].isalnum()


def report_texts(text: str) -> Iterator[tuple[int, str, str]]:
    """(first line, patient number, prose) of each message in a de-identified HL7 v2 file, for
    training text: the text-typed OBX lines of its reports as the sender broke them, then its
    notes. Messages without prose, and lines that are not segments, yield nothing."""
    lines = [match.group(0) for match in _LINE.finditer(text) if match.group(0)]
    starts = [i for i, line in enumerate(lines) if line.lstrip("\x0b")[:3] in UNIT_STARTS] + [len(lines)]
    for start, end in pairwise(starts):
        items = _parse_message("".join(lines[start:end]), "", start + 1)
        if isinstance(items, Malformed):
            continue
        segments = [item for item in items if isinstance(item, Segment)]
        pid = next((s for s in segments if s.name == "PID"), None)
        prose = []
        for segment in segments:
            if segment.name == "OBX" and len(segment.fields) > 5 and segment.text((2, 1, 1, 1)).strip().upper() in TEXT_TYPES:
                prose.append(" ".join(segment.text(a) for rep in range(1, segment.repetitions(5) + 1)
                                      for comp in range(1, segment.components(5, rep) + 1) for a in segment.leaves(5, rep, comp)))
            elif segment.name == "NTE" and len(segment.fields) > 3:
                prose.append(" ".join(segment.text(a) for comp in range(1, segment.components(3, 1) + 1) for a in segment.leaves(3, 1, comp)))
        body = "\n".join(prose).strip()
        if body:
            yield start + 1, _patient_number(pid) if pid is not None else "", body
