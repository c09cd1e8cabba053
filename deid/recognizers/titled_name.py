"""Names announced by a title, role, relation or header: "Dr Smith", "wife Mary", "Name: ...".

Context is the strongest evidence for a name in clinical text, and it tells staff from family:
"Dr", "RN", "NP", "attending", "paged" precede clinicians; "Mr", "wife", "son", "pt" precede the
patient and relatives. Names followed by a credential ("Smith, MD", "K. Lee RN") are clinicians.
Titles and relations accept any name-like word after them; weak cues that are ordinary words
("by", "with", "per", "pt") need a listed name or, in mixed case, a capitalised word.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from deid.detection.entities import Entity
from deid.detection.presidio_api import RecognizerResult
from deid.recognizers.base import LexiconRecognizer, NoteStyle
from deid.recognizers.clinical_terms import DRUG_ENDINGS
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.name_words import TOKEN, Word, extend_name, is_capitalized, looks_like_name, next_word

CLINICIAN_TITLES = (
    r"dr|drs|doctor|prof|professor|rn|np|pa-c|crna|lpn|cnm|fnp|aprn|rrt|attending|resident|intern|fellow|surgeon|"
    r"[a-z]+ologist|[a-z]+iatrist|[a-z]+ician|intensivist|hospitalist|pcp|provider|nurse|charge nurse|"
    r"case manager|social worker|chaplain|dietitian|pharmacist|therapist|midwife|anesthetist"
)
CLINICIAN_CUES = (
    r"seen by|evaluated by|examined by|per|d/w|dw|discussed with|spoke with|spoke to|talked with|called|notified|"
    r"paged|page|signed by|cosigned by|dictated by|transcribed by|electronically signed by|cc|covering|"
    r"by|with|to|sw|cm|rt|ot|pt/ot|md|pa"
)
# Cues after which staff are named by surname alone; an unknown word after them is a name.
REPORTING_CUES = frozenset(
    {"per", "d/w", "dw", "discussed with", "spoke with", "spoke to", "paged", "notified", "signed by", "seen by"}
)
PERSON_TITLES = (
    r"mr|mrs|ms|miss|mister|mstr|wife|husband|spouse|son|sons|daughter|daughters|mother|father|mom|dad|"
    r"sister|brother|sibling|siblings|friend|niece|nephew|grandson|granddaughter|grandmother|grandfather|"
    r"grandma|grandpa|aunt|uncle|cousin|partner|boyfriend|girlfriend|fiance|fiancee|hcp|proxy|"
    r"health care proxy|guardian|neighbor|neighbour|caregiver|visitor|caller|patient name|pt name|name|"
    r"stepson|stepdaughter|son-in-law|daughter-in-law|dtr|sis|bro|gf|bf|infant|baby|re"
)
PERSON_CUES = r"pt|patient|family|mrs\.?|and|or"
HEADER_CUES = frozenset({"pt", "patient"})
HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mister", "dr", "drs", "doctor", "prof", "professor"})
TRIGGER = re.compile(
    rf"(?<![A-Za-z])(?:(?P<clin_title>{CLINICIAN_TITLES})|(?P<pers_title>{PERSON_TITLES})|"
    rf"(?P<clin_cue>{CLINICIAN_CUES})|(?P<pers_cue>{PERSON_CUES}))(?![A-Za-z])",
    re.IGNORECASE,
)
AFTER_TRIGGER = re.compile(
    r"(?:\.|'s)?(?:[ \t]*[:#,\-][ \t]*|[ \t]+)(?:(?:is|named|was|of|name)[ \t]+)?", re.IGNORECASE
)
CREDENTIAL = re.compile(
    r"(?:,[ \t]*+|(?<![ \t])[ \t]++)\(?(?:md|m\.d\.|do|rn|r\.n\.|np|pa-c|pa|crna|lpn|bsn|msn|rrt|pharmd|phd|dds|fnp|aprn|cnm|pgy-?\d|"
    r"cm|resident|attending|fellow|intern)\)?"
    r"(?![A-Za-z])",
    re.IGNORECASE,
)
# A relative named before the relation: "Mark, pt's nephew", "spoke with Ann (her daughter)".
RELATION_AFTER = re.compile(
    rf"(?<![ \t])[ \t]*+[,(]?+[ \t]*+(?:the[ \t]+)?(?:pt'?s|patient'?s|his|her)[ \t]+(?:{PERSON_TITLES})(?![A-Za-z])", re.IGNORECASE
)
# Staff and family named before what they did: "Oyelaran aware", "Kowalski notified", "Ann at bedside".
STATUS_AFTER = re.compile(
    r"(?<![ \t])[ \t]++(?:is[ \t]+|was[ \t]+|made[ \t]+)?(?:aware|notified|paged|updated|informed|in to see|here to see|"
    r"at bedside|at the bedside|returned call|called back)(?![A-Za-z])",
    re.IGNORECASE,
)
# Someone who speaks or asks is a person: "martornu would like call back", "Vintu states she ...".
PERSON_VERB_AFTER = re.compile(
    r"(?<![ \t])[ \t]++(?:would like|wants|wanted|states|stated|says|said|asks|asked|requests|requested|reports|reported|"
    r"agrees|agreed|expressed|phoned|visited|will call|called|calls)(?![A-Za-z])",
    re.IGNORECASE,
)
# Plainer verbs say less ("Mark was noted"), so before these only a word no list knows, or a listed
# name that is no word, counts: "Tomomi is from Ohio", "Shovda spent a year abroad".
SUBJECT_VERB_AFTER = re.compile(
    r"(?<![ \t])[ \t]++(?:is|was|has|had|will|spent|went|came|lives|lived|works|worked|remains|returned|arrived|left|told|"
    r"shouted|denies|denied|declined|refused|prefers|understands|knows)(?![A-Za-z])",
    re.IGNORECASE,
)
VOWEL = re.compile(r"[aeiouyà-ÿ]", re.IGNORECASE)
# Surnames that are also what "per" measures or cites ("2 tabs per day.", "per house officer").
NOT_REPORTERS = frozenset(
    "day days week weeks month hour hours shift dose night morning evening minute house nurse lab floor scale work "
    "case medicine rounds burn unit team care order orders policy chart report plan protocol kilo pound liter".split()
)
ROLE_OR_END_AFTER = re.compile(
    r"[ \t]*(?:[.;]|$|,|\n|[ \t](?:cm|rn|md|np|pa|sw|pt|ot|rrt|do|from|of|in[ \t]+(?:pharmacy|rad|radiology|micu|sicu|ccu))\b)",
    re.IGNORECASE,
)
ROLE_WORDS = frozenset({"cm", "resident", "attending", "fellow", "intern"})
# "DR.LINDQVIST": an honorific's dot with the surname glued to it.
GLUED_DOT = re.compile(r"\.(?=[^\W\d_])")
# A name written against a slash ("DR. OKAFOR/RN", "Dr. Ng/Haas"), which ``TOKEN`` leaves out
# because "d/w" and "s/p" are shorthand, not words. Only a title may announce one.
SLASHED_NAME = re.compile(r"(?<![/\\\w])[^\W\d_](?:[^\W\d_]|['\-](?=[^\W\d_]))+(?=/[^\W\d_])")
# The second clinician of "Dr. Ng/Haas": a word after the slash that ends at a blank, comma or stop.
SLASH_PARTNER = re.compile(r"/([^\W\d_](?:[^\W\d_]|['\-](?=[^\W\d_]))+)(?![\w/\\])")
CREDENTIAL_WORDS = frozenset(
    "md do rn np pa pa-c crna lpn bsn msn rrt pharmd phd dds fnp aprn cnm cm resident attending fellow intern "
    "team service staff".split()
)
PRECEDING_TOKEN = re.compile(r"([^\W\d_](?:[^\W\d_]|['\-])*\.?)[ \t,]{0,3}$")  # any script: "Oddgeirsdóttir"


class TitledNameRecognizer(LexiconRecognizer):
    ENTITIES = (Entity.CLINICIAN.value, Entity.PATIENT.value)

    def find(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for trigger in TRIGGER.finditer(text):
            honorific_word = trigger.group().lower() in HONORIFICS
            gap = AFTER_TRIGGER.match(text, trigger.end()) or (GLUED_DOT.match(text, trigger.end()) if honorific_word else None)
            if gap is None or "\n" in gap.group():
                continue
            match = TOKEN.match(text, gap.end())
            if match is None and trigger.group("clin_title"):
                match = SLASHED_NAME.match(text, gap.end())
            if match is None:
                continue
            word = Word(match.start(), match.end(), match.group())
            # A header ("PATIENT: ...", "Pt: ...") announces a name as firmly as a title does.
            header = trigger.group("pers_cue") is not None and ":" in gap.group() and trigger.group().lower() in HEADER_CUES
            title = bool(trigger.group("clin_title") or trigger.group("pers_title") or header)
            cue = trigger.group("clin_cue") or ""
            honorific = honorific_word and style is NoteStyle.MIXED and ":" not in gap.group()  # "MS: Pt ..." is a header
            if not (
                self._after_honorific(word, honorific)
                or self._accepts(word, style, title, cue)
                or self._two_word_name(text, word, style)
                or self._reported_surname(text, word, style, cue)
            ):
                continue
            start, end = extend_name(text, word, self.lexicon, style)
            if word.is_initial and end == word.end:
                continue
            clinician = bool(trigger.group("clin_title") or trigger.group("clin_cue"))
            entity = Entity.CLINICIAN if clinician else Entity.PATIENT
            if trigger.group("clin_title"):
                end = self._slash_partners(text, end, style)
            results.append(self.result(start, end, entity.value, 0.85 if title else 0.6))
        results.extend(self._before_credentials(text, style))
        results.extend(self._before_relation(text, style))
        results.extend(self._before_cue(text, style, STATUS_AFTER, lambda word: self._accepts(word, style, title=False) or self._strange(word)))
        results.extend(self._before_cue(text, style, PERSON_VERB_AFTER, lambda word: self._speaker(word, style)))
        results.extend(self._before_cue(text, style, SUBJECT_VERB_AFTER, lambda word: self._speaker(word, style, given=False)))
        return results

    def _slash_partners(self, text: str, end: int, style: NoteStyle) -> int:
        """"Dr. Ng/Haas", "DR. OKAFOR/VANCE/RN": colleagues named together after one title; the
        credential or team word that often closes the list ("/RN", "/team") is no name."""
        for _ in range(2):
            partner = SLASH_PARTNER.match(text, end)
            if partner is None:
                break
            word = Word(partner.start(1), partner.end(1), partner.group(1))
            if word.is_initial or word.lower in CREDENTIAL_WORDS or not looks_like_name(word, self.lexicon, style):
                break
            if style is NoteStyle.MIXED and not word.text[0].isupper():
                break
            if not (self.lexicon.is_name(word.lower) or self.lexicon.is_unknown(word.lower)):
                break
            end = word.end
        return end

    def _reported_surname(self, text: str, word: Word, style: NoteStyle, cue: str) -> bool:
        """"extubated per fuller.", "d/w dean cm": in a one-case note, a listed surname that is also a
        word counts after a reporting cue when the sentence or a role ends right after it."""
        if style is NoteStyle.MIXED or cue.lower() not in REPORTING_CUES or word.lower not in self.lexicon.last_names:
            return False
        if word.lower in self.lexicon.clinical_terms or word.lower in self.lexicon.stop_words or word.lower in NOT_REPORTERS:
            return False
        return ROLE_OR_END_AFTER.match(text, word.end) is not None

    def _after_honorific(self, word: Word, honorific: bool) -> bool:
        """"Ms. Delacroix", "Dr. Ng", "Dr. Foley": after an honorific in mixed case, a capitalised
        word is a surname, even one a dictionary lists as a word or clinical shorthand."""
        return honorific and not word.is_initial and is_capitalized(word) and word.lower not in self.lexicon.stop_words

    def _accepts(self, word: Word, style: NoteStyle, title: bool, cue: str = "") -> bool:
        if not looks_like_name(word, self.lexicon, style):
            return False
        if word.is_initial or title:
            return True  # an initial is kept only if a name follows it ("RN K. LINDQVIST")
        lower = word.lower
        if style is not NoteStyle.MIXED and cue.lower() in REPORTING_CUES and self.lexicon.is_unknown(lower):
            return True  # "extubated per rantulo", "D/W IVARS": no English word, so a name
        if style is NoteStyle.MIXED:
            # In mixed-case text an unknown ALL-CAPS word after a weak cue is an acronym ("ok to
            # WBAT", "d/c to LTAC"); a capitalised one, or a listed name in capitals, is a name.
            if word.text.isupper():
                return lexicon_name_only(self.lexicon, lower)
            # Capitalised after a cue, a given name counts even if it is also a word ("spoke with
            # Grace", "d/w Mark"), unless it is clinical shorthand; surnames that are words
            # ("Good", "Home") do not.
            given = lower in self.lexicon.first_names and lower not in self.lexicon.clinical_terms
            return is_capitalized(word) and (given or lexicon_name_only(self.lexicon, lower) or self.lexicon.is_unknown(lower))
        return lexicon_name_only(self.lexicon, lower)

    def _two_word_name(self, text: str, word: Word, style: NoteStyle) -> bool:
        """After a weak cue, two name-like words in a row ("pt jula arndorsson") are a name."""
        if not self.lexicon.is_unknown(word.lower) or (style is NoteStyle.MIXED and not word.text[0].isupper()):
            return False
        following = next_word(text, word.end)
        return (
            following is not None
            and not following.is_initial
            and looks_like_name(following, self.lexicon, style)
            and (self.lexicon.is_name(following.lower) or self.lexicon.is_unknown(following.lower))
        )

    def _before_credentials(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for credential in CREDENTIAL.finditer(text):
            end = credential.start()
            # A role word is weaker evidence than a degree: the name before it must be no ordinary word.
            role = credential.group().strip(" \t,()").lower() in ROLE_WORDS
            start = None
            position = end
            for _ in range(3):
                match = _last_token_before(text, position)
                if match is None:
                    break
                word = Word(match.start(), match.end(), match.group())
                if not looks_like_name(word, self.lexicon, style):
                    break
                if style is NoteStyle.MIXED and not (word.text[0].isupper() or word.is_initial):
                    break
                if role and self.lexicon.is_common(word.lower):
                    break  # "nursing home resident", "the attending"
                start = word.start
                position = word.start
            if start is not None and end - start > 2:
                results.append(self.result(start, end, Entity.CLINICIAN.value, 0.8))
        return results

    def _before_relation(self, text: str, style: NoteStyle) -> list[RecognizerResult]:
        results = []
        for relation in RELATION_AFTER.finditer(text):
            start = end = None
            position = relation.start()
            for _ in range(2):
                match = _last_token_before(text, position)
                if match is None or not self._named_by_relation(Word(match.start(), match.end(), match.group()), style):
                    break
                start, end = match.start(), end or match.end()
                position = match.start()
            if start is not None and end is not None:
                results.append(self.result(start, end, Entity.PATIENT.value, 0.7))
        return results

    def _before_cue(self, text: str, style: NoteStyle, cue: re.Pattern[str], accept: Callable[[Word], bool]) -> list[RecognizerResult]:
        """Names right before ``cue`` (a status or a verb), with a first name or initial before them."""
        results = []
        for found in cue.finditer(text):
            match = _last_token_before(text, found.start())
            if match is None or match.end() != found.start():
                continue
            word = Word(match.start(), match.end(), match.group())
            if word.is_initial or not accept(word):
                continue
            start = self._name_start(text, word, style)
            results.append(self.result(start, word.end, Entity.PATIENT.value, 0.6))
        return results

    def _strange(self, word: Word) -> bool:
        """A word of four letters or more that no English, clinical or drug list knows, written in
        any case: before "aware" or "notified" it is a name even in lower case in a mixed-case note."""
        lower = word.lower
        return (
            len(lower) >= 4
            and VOWEL.search(lower) is not None
            and self.lexicon.is_unknown(lower)
            and not lower.endswith(DRUG_ENDINGS)
        )

    def _speaker(self, word: Word, style: NoteStyle, given: bool = True) -> bool:
        """The subject of a person's verb is a name if it is no English or clinical word, or, in
        mixed case, a capitalised given name even if it is also a word ("Mark called")."""
        lower = word.lower
        if not looks_like_name(word, self.lexicon, style) or (style is NoteStyle.MIXED and not is_capitalized(word)):
            return False
        strange = len(lower) >= 4 and VOWEL.search(lower) is not None and self.lexicon.is_unknown(lower)
        listed_given = given and style is NoteStyle.MIXED and lower in self.lexicon.first_names
        return strange or listed_given or lexicon_name_only(self.lexicon, lower)

    def _name_start(self, text: str, word: Word, style: NoteStyle) -> int:
        """Where the name ending in ``word`` starts: up to two first names or initials right before
        it join ("Jim Doherty aware", "Mohmad R. Vizirov will")."""
        start = word.start
        for _ in range(2):
            match = _last_token_before(text, start)
            if match is None or text[match.end() : start] not in (" ", ". "):
                break
            before = Word(match.start(), match.end(), match.group())
            name_like = looks_like_name(before, self.lexicon, style) and (
                self.lexicon.is_name(before.lower) or (style is NoteStyle.MIXED and self.lexicon.is_unknown(before.lower))
            )
            if not (before.is_initial or name_like) or (style is NoteStyle.MIXED and not before.text[0].isupper()):
                break
            start = before.start
        return start

    def _named_by_relation(self, word: Word, style: NoteStyle) -> bool:
        """The apposition is as firm a cue as a title, so a name that is also a word ("Mark") counts."""
        if word.is_initial or not looks_like_name(word, self.lexicon, style):
            return False
        if style is NoteStyle.MIXED:
            return is_capitalized(word)
        return self.lexicon.is_name(word.lower)


def lexicon_name_only(lexicon: Lexicon, lower: str) -> bool:
    """A listed name that is not also an ordinary or clinical word."""
    return lexicon.is_name(lower) and not lexicon.is_ambiguous(lower)


def _last_token_before(text: str, position: int) -> re.Match[str] | None:
    match = PRECEDING_TOKEN.search(text, max(0, position - 40), position)
    if match is None:
        return None
    return TOKEN.match(text, match.start(1))
