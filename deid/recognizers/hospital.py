"""Hospital, clinic, nursing-home and ward names: "Riverside General Hospital", "GREENVIEW
NURSING HOME", "st. mary's rehab", "5 WEST", "Finard 4"."""

from __future__ import annotations

import re

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle
from deid.recognizers.clinical_terms import DESCRIPTIVE_NAMES, DRUG_ENDINGS

FACILITY = re.compile(
    r"(?<![A-Za-z])(?:hospital|hosp|medical center|med ctr|med center|med centre|medical ctr|medical centre|"
    r"heart center|heart centre|cancer centre|health center|health centre|healthcare|"
    r"health system|clinic|clinics|infirmary|nursing home|nursing facility|nursing center|rehab center|"
    r"rehabilitation center|rehabilitation hospital|rehab hospital|care center|hospice|sanatorium|"
    r"medical group|cancer center|cancer institute|heart institute|children's|childrens|memorial|"
    r"general hospital|medical associates|skilled nursing|assisted living|senior living|manor|"
    r"va medical center|vamc)(?![A-Za-z])",
    re.IGNORECASE,
)
NAME_PART = re.compile(r"([A-Za-z][A-Za-z'\-&]*\.?)[ \t]+$")
# The name may follow the facility word: "Hospital of the Cape and Islands", "Medical Center of Central Georgia".
OF_NAME = re.compile(r"[ \t]+of[ \t]+(?:the[ \t]+)?", re.IGNORECASE)
NEXT_WORD = re.compile(r"([ \t]+)?([A-Za-z][A-Za-z'\-]*)")
CONNECTORS = frozenset({"of", "the", "and", "st", "st.", "saint", "&", "mt", "mt.", "mount", "for"})
UNIVERSITY_WORDS = frozenset({"university", "univ", "univ."})
STOP_BEFORE = frozenset(
    "to from at in the a an this that our outside osh local nearby his her their transferred admitted sent via "
    "returned discharged home with for by on and or was is per pt pt's patient patient's my your same other another "
    "any which what nearest will would need needs needed require requires requested request refer referred "
    "consider considering possible plan planned pending awaiting await into onto about if not no".split()
)
WARD = re.compile(
    r"(?<![\w/])(?:\d{1,2}[A-Za-z]?[ \t]?(?:west|east|north|south)(?![A-Za-z])|"
    r"(?:west|east|north|south)[ \t]?\d{1,2}[A-Za-z]?(?![\w/])|"
    r"(?:ward|wing|pavilion|building|bldg)[ \t]+(?:[A-Z]?\d{1,2}[A-Za-z]?|[A-Z])(?![\w/]))",
    re.IGNORECASE,
)

# A ward named after a person or place, announced by a unit cue: "UNIT: FINARD 4", "to Finard 4",
# "from 9 Beknu".
NAMED_WARD = re.compile(
    r"(?<![A-Za-z])(?:(?P<strong>unit|ward|floor|transferred to|transfer to|tx to|tx'd to|moved to|admitted to|called to|"
    r"return to|returned to|back to|sent to|bed on|transferred from|to)|on|from)[ \t]*[:\-]?[ \t]*"
    r"(?P<name>(?P<word>[A-Za-z][A-Za-z'\-]{2,})[ \t]+\d{1,2}[A-Za-z]?|\d{1,2}[ \t]+(?P<word2>[A-Za-z][A-Za-z'\-]{2,}))"
    r"(?![\w/'\-]|\.\d)(?![ \t]*(?:mg|mcg|g|ml|cc|units?|u|meq|mmol|%|l|lpm|mmhg|hrs?|h|mins?|tabs?|puffs?)\b)",
    re.IGNORECASE,
)
# A bare number before "to" makes it a range or a ratio ("2 TO 1 BLOCK", "85 TO 98"); a date does not.
NUMBER_BEFORE = re.compile(r"(?<![\d/.\-])\d+(?:\.\d+)?%?[ \t]*$")
# Words after a count that are units of measure or time, never a ward's name: "from 2 units", "to 3 days".
UNIT_WORDS = frozenset(
    "units unit days day hours hrs hr weeks wks months mins minutes times liters mg mcg ml cc kg lb lbs am pm "
    "north south east west left right".split()
)

# Where a patient is sent, comes from or is followed: "transferred to <X>", "arrived at <X>",
# "followed at <X>", "enroute to <X>". What stands there is a hospital, a unit or a place, and
# units have generic names, so only a word no vocabulary knows, or a short acronym that is no
# clinical or unit shorthand, is taken for the institution's own name.
MOVEMENT_CUE = re.compile(
    r"(?<![A-Za-z])(?:transferred|transfered|transfer|trans|tx'?d?|xfer(?:red)?|arrived|arrival|admitted|admit|brought|"
    r"presented|referred|sent|taken|returned|return|come|came|followed|treated|enroute|en route|transported|c/o|"
    r"called out|call out|going|went)(?:[ \t]+(?:back|here|over))?[ \t]+(?:to|at|from|in|by)[ \t]+(?:the[ \t]+)?"
    r"(?P<word>[A-Za-z][A-Za-z'\-]*)(?![\w/])",
    re.IGNORECASE,
)
# The institution named before one of its departments: "<X> ER", "<X> MICU", "<X> cath lab".
BEFORE_DEPARTMENT = re.compile(
    r"(?<![\w/'\-])(?P<word>[A-Za-z][A-Za-z'\-]*)[ \t]+(?:er|ew|ed|e\.r\.|micu|sicu|ccu|icu|cath lab|campus|"
    r"emergency room|emergency department)(?![\w/])",
    re.IGNORECASE,
)
# Generic names of hospitals' units and of kinds of facility, never one institution's name.
GENERIC_UNITS = frozenset(
    "osh snf ltac ltach ltc acf alf icu micu sicu cvicu csru ccu cticu tsicu ticu nsicu nicu picu pacu pcu sdu "
    "cmed cmi ep eu ed er ew or ir ct mri us cath tele vicu ama hh vna nh rehab floor surg med ward unit room "
    "bed home er's ob ortho neuro onc cards gyn psych renal pulm gi surgery medicine".split()
)

# "St. Elizabeth's", "saint mary's": in a note, a saint's name in the possessive is a hospital.
SAINT = re.compile(r"\b(?:st|saint)\.?[ \t]+[A-Za-z]+'s\b(?![ \t]+wort)", re.IGNORECASE)
# Written without the apostrophe ("st elizabeths"), the saint must be a listed given name, since
# "ST changes" and "st elevations" are ECG findings.
SAINT_NO_APOSTROPHE = re.compile(r"\b(?:st|saint)\.?[ \t]+(?P<saint>[A-Za-z]{3,})s\b", re.IGNORECASE)
DEPARTMENT_WORDS = frozenset(
    "infusion dialysis wound pain urgent outpatient inpatient primary family medicine surgical surgery dental eye "
    "mental walk-in same-day transplant sleep fertility vascular breast spine stroke diabetes anticoagulation coumadin "
    "heart lung liver kidney memory travel employee student specialty our your their".split()
)


def _department(lower: str) -> bool:
    """Specialties and services ("cardiology clinic") are not names of places."""
    return lower in DEPARTMENT_WORDS or lower.endswith(("ology", "ogy", "iatry", "iatrics", "ics"))


class HospitalRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.HOSPITAL.value,)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for match in FACILITY.finditer(text):
            start = self._name_start(text, match.start(), style)
            end = self._name_end(text, match.end(), style)
            if start < match.start() or end > match.end():
                results.append(self.result(start, end, Entity.HOSPITAL.value, 0.8))
        for match in SAINT.finditer(text):
            results.append(self.result(match.start(), match.end(), Entity.HOSPITAL.value, 0.6))
        for match in SAINT_NO_APOSTROPHE.finditer(text):
            stem = match.group("saint").lower()
            if stem + "s" in self.lexicon.stop_words:
                continue  # "ST this am": an ECG finding, then "this"
            if self.lexicon.is_name(stem) and not self.lexicon.is_ambiguous(stem):
                results.append(self.result(match.start(), match.end(), Entity.HOSPITAL.value, 0.6))
        for match in WARD.finditer(text):
            results.append(self.result(match.start(), match.end(), Entity.HOSPITAL.value, 0.65))
        for pattern in (MOVEMENT_CUE, BEFORE_DEPARTMENT):
            for match in pattern.finditer(text):
                if self._institution_word(match.group("word"), style):
                    results.append(self.result(*match.span("word"), Entity.HOSPITAL.value, 0.6))
        for match in NAMED_WARD.finditer(text):
            strong = match.group("strong") is not None and not (
                match.group("strong").lower() == "to" and NUMBER_BEFORE.search(text, max(0, match.start() - 12), match.start())
            )
            if self._ward_name(match.group("word") or match.group("word2"), style, strong_cue=strong):
                results.append(self.result(*match.span("name"), Entity.HOSPITAL.value, 0.6))
        return results

    def _institution_word(self, word: str, style: NoteStyle) -> bool:
        """A word after a movement cue or before a department that names the institution itself:
        a 2-4 letter acronym no vocabulary or unit list holds (capitals in mixed-case text), or a
        longer word that is no English, clinical or drug word ("transfer to quartermain")."""
        lower = word.lower()
        if lower in GENERIC_UNITS or lower in self.lexicon.clinical_terms or lower in self.lexicon.stop_words:
            return False
        if lower in self.lexicon.drug_names or lower.endswith(DRUG_ENDINGS) or _department(lower):
            return False
        if 2 <= len(lower) <= 4 and lower.isalpha():
            return not self.lexicon.is_common(lower) and (style is not NoteStyle.MIXED or word.isupper())
        if style is NoteStyle.MIXED and word[0].isupper() and word[1:].islower() and self.lexicon.is_name(lower):
            return True  # "transferred to Lally MICU": a building named after a person
        return len(lower) >= 5 and self.lexicon.is_unknown(lower)

    def _ward_name(self, word: str, style: NoteStyle, strong_cue: bool) -> bool:
        """A ward's proper name is no ordinary or clinical word ("on lasix 40" is a dose, not a ward);
        a surname that is also a word counts after a cue that only a ward follows ("ADMITTED TO 11
        COOK", "to 6 SANDERS"), or capitalised in mixed case, never after "on" or a "to" that ends a
        range or ratio ("2 TO 1 BLOCK")."""
        lower = word.lower()
        if lower in self.lexicon.clinical_terms or lower in self.lexicon.stop_words or lower in UNIT_WORDS:
            return False
        if lower in DESCRIPTIVE_NAMES:
            return False  # "hct from eve 27": the evening's value
        if lower.endswith(DRUG_ENDINGS) and not self.lexicon.is_name(lower):
            return False  # "on amlodipine 10"; a listed surname ("Morgan 4") still names a ward
        if self.lexicon.is_common(lower) and not (self.lexicon.is_name(lower) and (strong_cue or style is NoteStyle.MIXED)):
            return False
        return not (style is NoteStyle.MIXED and not word[0].isupper())

    def _lower_case_name_part(self, lower: str) -> bool:
        """"from university of maryland hospital": in a mixed-case note written in lower case, a
        listed place that is no ordinary word, or "university", still names the facility."""
        return lower in UNIVERSITY_WORDS or (lower in self.lexicon.places and not self.lexicon.is_common(lower))

    def _name_end(self, text: str, position: int, style: NoteStyle) -> int:
        """Walk forward over "of (the) <name>", up to five words; ``position`` if no name follows."""
        of = OF_NAME.match(text, position)
        if of is None:
            return position
        end, cursor = position, of.end()
        for index in range(5):
            word = NEXT_WORD.match(text, cursor)
            if word is None or (index == 0 and word.group(1)):
                break
            lower = word.group(2).lower()
            if lower in {"and", "of", "the"} and index > 0:
                cursor = word.end()
                continue
            if lower in STOP_BEFORE or lower in self.lexicon.clinical_terms or _department(lower):
                break
            if style is NoteStyle.MIXED and not word.group(2)[0].isupper():
                break
            if style is not NoteStyle.MIXED and self.lexicon.is_common(lower) and lower not in self.lexicon.places:
                break
            end = cursor = word.end()
        return end

    def _name_start(self, text: str, position: int, style: NoteStyle) -> int:
        """Walk back over the words naming the facility, up to five."""
        start = position
        for _ in range(5):
            match = NAME_PART.search(text, max(0, start - 30), start)
            if match is None or "\n" in match.group():
                break
            word = match.group(1)
            lower = word.lower()
            if lower in STOP_BEFORE or lower in self.lexicon.clinical_terms or _department(lower):
                break
            if word.endswith(".") and lower not in CONNECTORS:
                break  # a sentence ends there: "D/W PHARMACY. NURSING HOME"
            if style is NoteStyle.MIXED and not (word[0].isupper() or lower in CONNECTORS or self._lower_case_name_part(lower)):
                break
            start = match.start(1)
        # A name does not end at a connector: "of the Hospital" is not a name.
        while start < position and text[start:position].split()[0].lower() in CONNECTORS - {"st", "st.", "saint", "mt", "mt.", "mount"}:
            start += len(text[start:position].split()[0])
            start += len(text[start:position]) - len(text[start:position].lstrip())
        return start
