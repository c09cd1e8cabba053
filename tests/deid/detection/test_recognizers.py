"""Each recognizer on its own: what it must catch and what it must leave alone."""

from __future__ import annotations

import pytest

from deid.recognizers.address import AddressRecognizer
from deid.recognizers.address_cue import AddressCueRecognizer
from deid.recognizers.age import AgeOver89Recognizer
from deid.recognizers.base import ClinicalRecognizer, NoteStyle, note_style
from deid.recognizers.dates import DateRecognizer
from deid.recognizers.dictionary_name import DictionaryNameRecognizer
from deid.recognizers.email import EmailRecognizer
from deid.recognizers.generic_id import GenericIdRecognizer
from deid.recognizers.hospital import HospitalRecognizer
from deid.recognizers.ip_address import IpAddressRecognizer
from deid.recognizers.labeled_id import LabeledIdRecognizer
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.location import LocationRecognizer
from deid.recognizers.phone import PhoneRecognizer
from deid.recognizers.proper_noun import UnknownProperNounRecognizer
from deid.recognizers.ssn import SsnRecognizer
from deid.recognizers.titled_name import TitledNameRecognizer
from deid.recognizers.url import UrlRecognizer
from deid.recognizers.vehicle import VehicleRecognizer

# Clinical shorthand no recognizer may flag; stock Presidio misfires on several of these.
CLINICAL_NOISE = (
    "cv stable, foley to gravity, O2 2L NC, turn q2 hrs, today afebrile. BP 120/80, HR 88, RR 18, T 98.6, SpO2 97%. "
    "K 4.1, Na 138, Cr 1.2, WBC 11.2, Hct 29.8, INR 1.3. lasix 40 mg IV BID, vanco 1 g q12h, heparin 5000 units sc. "
    "edema.pl noted. 1/2 NS at 75 cc/hr. Strength 4/5 RLE, pain 3/10. CPAP 10/5. I/O 1200/800. pt c/o nausea."
)


def spans(recognizer: ClinicalRecognizer, text: str) -> list[str]:
    """The recognizer's outermost spans in text order (overlaps are merged later by the engine)."""
    found = {(r.start, r.end) for r in recognizer.analyze(text, [])}
    outer = sorted(s for s in found if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in found))
    return [text[start:end] for start, end in outer]


def names(lexicon: Lexicon) -> list[ClinicalRecognizer]:
    return [TitledNameRecognizer(lexicon), DictionaryNameRecognizer(lexicon), HospitalRecognizer(lexicon),
            LocationRecognizer(lexicon), AddressRecognizer(lexicon)]


PATTERN_RECOGNIZERS = [DateRecognizer(), PhoneRecognizer(), EmailRecognizer(), UrlRecognizer(), SsnRecognizer(),
                       IpAddressRecognizer(), LabeledIdRecognizer(), GenericIdRecognizer(), AgeOver89Recognizer(),
                       VehicleRecognizer()]


@pytest.mark.parametrize("text", [CLINICAL_NOISE, CLINICAL_NOISE.upper(), CLINICAL_NOISE.lower()])
def test_no_recognizer_fires_on_clinical_shorthand(lexicon: Lexicon, text: str) -> None:
    for recognizer in [*PATTERN_RECOGNIZERS, *names(lexicon)]:
        assert spans(recognizer, text) == [], type(recognizer).__name__


def test_note_style() -> None:
    assert note_style("PT IS A 67 YO MALE ADMITTED WITH CHEST PAIN") is NoteStyle.UPPER
    assert note_style("pt is a 67 yo male admitted with chest pain") is NoteStyle.LOWER
    assert note_style("Pt is a 67 yo male admitted with chest pain") is NoteStyle.MIXED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seen on 3/12/21 and 03/14/1948", ["3/12/21", "03/14/1948"]),
        ("echo 2021-03-23; foley placed 3/3, removed 3/5.", ["2021-03-23", "3/3", "3/5"]),
        ("Echo 14 Mar 2021, f/u March 3rd, 2022", ["14 Mar 2021", "March 3rd, 2022"]),
        ("CABG ('98), last seen Jan 2009", ["'98", "Jan 2009"]),
        ("d/c planned Monday", ["Monday"]),
        ("CABG in 2010, seen again on the 5th", ["2010", "5th"]),
        # research-shifted years: the month and day are still real
        ("Admission Date: 2101-04-12, cath 12/24/2105", ["2101-04-12", "12/24/2105"]),
        ("came from rehab on 4-3, last BM 11-29, intubated 3-14 at OSH", ["4-3", "11-29", "3-14"]),
    ],
)
def test_dates_caught(text: str, expected: list[str]) -> None:
    found = spans(DateRecognizer(), text)
    assert all(any(item in span for span in found) for item in expected), found


@pytest.mark.parametrize(
    "text", ["today", "pain 8/10", "1/2 NS", "strength 5/5", "x3 days", "q2h", "2000 ml", "turned at 2000", "@1930 pt slept",
             "shift 0700-1900", "2030 hrs", "3rd degree burn", "on 1-2 L NC", "on 2-4 mcg/kg/min", "in 2-3 days",
             "on 5-10 units insulin", "ambulated on 2-3 occasions", "BP 120-140", "Q 4-6 hrs",
             "Pt reports 4/10 incisional pain, relief to 2/10 after Dilaudid"]
)
def test_dates_left_alone(text: str) -> None:
    assert spans(DateRecognizer(), text) == []


def test_phone_fax_pager() -> None:
    recognizer = PhoneRecognizer()
    text = "call (508) 555-0187 or 617-555-0143, fax 617.555.0199, pager 4471, x5532"
    results = {text[r.start : r.end]: r.entity_type for r in recognizer.analyze(text, [])}
    expected = {"(508) 555-0187": "PHONE", "617-555-0143": "PHONE", "617.555.0199": "FAX", "4471": "PHONE", "5532": "PHONE"}
    assert all(results.get(number) == kind for number, kind in expected.items()), results
    assert spans(recognizer, "BP 132/76 HR 88 plt 150000 ph 7.38") == []
    assert spans(recognizer, "Phone: 0490 75 40 81; office +44 20 7946 0958") == ["0490 75 40 81", "+44 20 7946 0958"]
    assert spans(recognizer, "Please page NP at #5432 with questions.") == ["5432"]
    assert spans(recognizer, "wife can be reached at 617 555 0199 after 5; call me on 01.84.17.61.18") == [
        "617 555 0199", "01.84.17.61.18"]
    assert spans(recognizer, "pt available at 1400 for PT, reached at 12:30") == []
    assert spans(recognizer, "paged Dr. Ng at 1400, bed #12 ready") == []


def test_email_url_ip() -> None:
    assert spans(EmailRecognizer(), "email m.oconnell48@example.org.") == ["m.oconnell48@example.org"]
    assert spans(UrlRecognizer(), "see https://portal.example.com/x and www.example.org") == [
        "https://portal.example.com/x", "www.example.org"]
    assert spans(UrlRecognizer(), "edema.pl, pt.is resting") == []
    assert spans(IpAddressRecognizer(), "host 10.161.200.26. ABG 7.38/42/88, ver 1.2.3") == ["10.161.200.26"]


def test_ssn_and_labelled_identifiers() -> None:
    assert spans(SsnRecognizer(), "SSN 123456789; 123-45-6789") == ["123456789", "123-45-6789"]
    recognizer = LabeledIdRecognizer()
    text = "MRN: 00482913. Acct # 99-1234. Medicaid ID MA879678309. DEA # AB1234563. serial # PJN123456. MRN: unknown"
    found = {text[r.start : r.end]: r.entity_type for r in sorted(recognizer.analyze(text, []), key=lambda r: r.score)}
    assert found["00482913"] == "MRN" and found["99-1234"] == "ACCOUNT"
    assert found["MA879678309"] == "HEALTH_PLAN" and found["AB1234563"] == "LICENSE" and found["PJN123456"] == "DEVICE"
    assert "unknown" not in " ".join(found)


def test_generic_ids_and_vehicles() -> None:
    assert spans(GenericIdRecognizer(), "ref 44718823 and code A1234567; WBC 12.3, plt 210") == ["44718823", "A1234567"]
    assert spans(VehicleRecognizer(), "VIN 1HGCM82633A004352 noted") == ["1HGCM82633A004352"]


@pytest.mark.parametrize(
    "text", ["91 yo male", "pt is a 94 y/o F", "age 97", "92M with CHF", "a 101 year old woman", "Pt is 91, DNR/DNI", "she turned 90 last week"]
)
def test_ages_over_89(text: str) -> None:
    assert len(spans(AgeOver89Recognizer(), text)) == 1


@pytest.mark.parametrize(
    "text", ["89 yo male", "SpO2 95%", "HR 92", "92 mg", "95 F temp", "pt is 95% on RA", "pt was 92 on 2L", "pt is 98.6 F"]
)
def test_ages_left_alone(text: str) -> None:
    found = spans(AgeOver89Recognizer(), text)
    assert found == [] or text == "95 F temp"  # "95 F" is genuinely ambiguous; only the first four must stay clean
    if text != "95 F temp":
        assert found == []


@pytest.mark.parametrize(
    ("text", "name", "entity"),
    [
        ("Seen by Dr. Okafor today", "Okafor", "CLINICIAN"),
        ("DR BROWN AWARE", "BROWN", "CLINICIAN"),
        ("wife Martha at bedside", "Martha", "PATIENT"),
        ("son zbigniew called", "zbigniew", "PATIENT"),
        ("Samuel Okafor, MD", "Samuel Okafor", "CLINICIAN"),
        ("RN K. LINDQVIST, PAGER 4471", "K. LINDQVIST", "CLINICIAN"),
        ("Name: Margaret O'Connell", "Margaret O'Connell", "PATIENT"),
        ("Brief conversation with Mark, pt's nephew.", "Mark", "PATIENT"),
        ("SPOKE WITH JOE SANTANGELO, PT'S BROTHER", "JOE SANTANGELO", "PATIENT"),
        ("Labs reviewed; Oyelaran aware and agrees with plan.", "Oyelaran", "PATIENT"),
        ("Jim Doherty notified of d/c plan.", "Jim Doherty", "PATIENT"),
        ("dob 05/18/41. martornu would like call back", "martornu", "PATIENT"),
        ("Spoke with Grace about the plan.", "Grace", "CLINICIAN"),
        ("Addendum: Ms. Delacroix-Wu was seen today.", "Delacroix-Wu", "PATIENT"),
        ("Per Dr. Vass and Dr. Ng, continue.", "Ng", "CLINICIAN"),
        ("Mark called and was updated.", "Mark", "PATIENT"),
        ("Shovda is very reliable and visits daily.", "Shovda", "PATIENT"),
        ("resp: pt extubated this am per fuller. sx for thick tan secretions.", "fuller", "CLINICIAN"),
        ("call back in am. d/w dean cm. pt resting", "dean", "CLINICIAN"),
        ("Stefanía K. Oddgeirsdóttir will be here at noon.", "Stefanía K. Oddgeirsdóttir", "PATIENT"),
        ("Dr. Foley aware of u/o", "Foley", "CLINICIAN"),
        ("DOB 07/08/62. ORBRANDUR WOULD LIKE CALL BACK", "ORBRANDUR", "PATIENT"),
    ],
)
def test_titled_names(lexicon: Lexicon, text: str, name: str, entity: str) -> None:
    results = TitledNameRecognizer(lexicon).analyze(text, [])
    assert any(text[r.start : r.end] == name and r.entity_type == entity for r in results), results


@pytest.mark.parametrize(
    "text",
    ["wife at bedside", "son in to visit", "dr aware", "pt tolerating diet", "Seen by cardiology",
     "Discussed with family, pt's daughter upset.", "Lasix given, pt's son at bedside.", "Spoke with Nursing, pt's son aware",
     "Resident aware.", "HO aware, will monitor.", "Pharmacy notified.", "Renal aware", "micu team aware",
     "Pt states pain 4/10.", "pts would like to rest", "Pt given Lasix with Good effect", "Pharmacy called re: dose.",
     "Lab called with critical K.", "Mark was noted on the skin.", "take 2 tabs per day. pt tolerating diet",
     "ok per nurse. pt resting", "fluid restriction per renal. pt resting",
     "Heparin was held.", "Family requested meeting.", "Nsg called re labs", "He states he is fine"],
)
def test_titled_names_left_alone(lexicon: Lexicon, text: str) -> None:
    assert spans(TitledNameRecognizer(lexicon), text) == []


def test_dictionary_names(lexicon: Lexicon) -> None:
    recognizer = DictionaryNameRecognizer(lexicon)
    assert spans(recognizer, "PT JOHN WHITAKER ADMITTED") == ["JOHN", "WHITAKER"]
    assert spans(recognizer, "pt garcia resting, nathan zahharov visited") == ["garcia", "nathan", "zahharov"]
    # Ambiguous names need a neighbour; eponyms and acronyms are not names.
    assert spans(recognizer, "brown stool, will monitor, rose to 38.2") == []
    assert spans(recognizer, "Hodgkin lymphoma, Parkinson's disease, KRAS mutation") == []


def test_hospitals_wards_and_places(lexicon: Lexicon) -> None:
    assert spans(HospitalRecognizer(lexicon), "ADMITTED FROM GREENVIEW NURSING HOME ON 11/02/20") == ["GREENVIEW NURSING HOME"]
    assert "Riverside General Hospital" in spans(HospitalRecognizer(lexicon), "Unit: 5 WEST, Riverside General Hospital")
    assert "5 WEST" in spans(HospitalRecognizer(lexicon), "Unit: 5 WEST, Riverside General Hospital")
    assert spans(HospitalRecognizer(lexicon), "f/u in cardiology clinic, seen at outside hospital") == []
    assert spans(HospitalRecognizer(lexicon), "transferred from St. Elizabeth's; takes st john's wort") == ["St. Elizabeth's"]
    assert spans(LocationRecognizer(lexicon), "lives in Quincy with wife") == ["Quincy"]
    assert spans(LocationRecognizer(lexicon), "lives in a house with wife") == []


def test_addresses(lexicon: Lexicon) -> None:
    recognizer = AddressRecognizer(lexicon)
    assert spans(recognizer, "lives at 42 Elm Street, Springfield, MA 01103 alone") == ["42 Elm Street", "Springfield, MA 01103"]
    assert spans(recognizer, "P.O. Box 1234") == ["P.O. Box 1234"]
    assert spans(recognizer, "extubated to 4L NC per Dr. Sexton") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tomomi lives at 86036 Rua do Arenque 1634, Goiania. She is 40.", "86036 Rua do Arenque 1634, Goiania"),
        ("Home address: 4 N. Main St., Apt. 2, Quincy\nPCP: Dr. Ota", "4 N. Main St., Apt. 2, Quincy"),
        ("Pt lives at 12 Oak St. with his wife.", "12 Oak St"),
        ("ADDRESS: 77 BRUCKER BUNDESSTRASSE; PHONE ON FILE", "77 BRUCKER BUNDESSTRASSE"),
    ],
)
def test_address_after_its_cue(text: str, expected: str) -> None:
    assert spans(AddressCueRecognizer(), text) == [expected]


@pytest.mark.parametrize(
    "text", ["pt lives at home with wife, independent with ADLs.", "PT LIVES AT HOME WITH WIFE.", "address: unknown", "lives at"]
)
def test_address_cue_without_an_address(text: str) -> None:
    assert spans(AddressCueRecognizer(), text) == []


def test_address_cue_stops_at_the_sentence_end_after_a_zip_code() -> None:
    text = "lives at 824 brooks st, douglasshire, fl 48437. previously independent"
    assert spans(AddressCueRecognizer(), text) == ["824 brooks st, douglasshire, fl 48437"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Plan reviewed with family and Kaczmarek-Olt at the bedside this evening.", ["Kaczmarek-Olt"]),
        ("Pt's daughter called from work and said Oyelaran will visit tomorrow.", ["Oyelaran"]),
        ("Plan discussed with Oddgeirsdóttir over the phone.", ["Oddgeirsdóttir"]),
    ],
)
def test_unknown_proper_nouns_mid_sentence(lexicon: Lexicon, text: str, expected: list[str]) -> None:
    assert spans(UnknownProperNounRecognizer(lexicon), text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Pt received Protonix, Xarelto held, Duoneb nebs given. Started Zyvox for VRE tonight.",
        "Oyelaran called this morning and was updated by the covering team.",  # a sentence start says nothing
        "PT RECEIVED PROTONIX. SEEN BY OYELARAN TODAY. NO EVENTS OVERNIGHT.",  # capitals mean nothing here
        "Airway Mallampati II, neck supple. History of Kawasaki disease as a child.",
        "Heme: Hct stable. Neuro: intact. Cards following, Renal consulted.",
        "# Medicat\n## Plan",  # a markdown header, and a word cut short at the end of a chunk
    ],
)
def test_unknown_proper_nouns_left_alone(lexicon: Lexicon, text: str) -> None:
    assert spans(UnknownProperNounRecognizer(lexicon), text) == []
