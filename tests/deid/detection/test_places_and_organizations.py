"""Gazetteer places, employers and named wards: what each must catch and what it must leave alone."""

from __future__ import annotations

import pytest

from deid.detection.engine import PhiDetector
from deid.recognizers.base import ClinicalRecognizer
from deid.recognizers.hospital import HospitalRecognizer
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.organization import OrganizationRecognizer
from deid.recognizers.place_name import PlaceNameRecognizer
from tests.deid.detection.conftest import covered, touched
from tests.deid.detection.test_recognizers import CLINICAL_NOISE


def found(recognizer: ClinicalRecognizer, text: str) -> list[str]:
    return sorted(text[r.start : r.end] for r in recognizer.analyze(text, []))


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("dtr driving up from worcester this am", "worcester"),
        ("BOSTON EMS BROUGHT PT IN", "BOSTON"),
        ("Family visiting from New Bedford.", "New Bedford"),
        ("transferred from St. Louis overnight", "St. Louis"),
        ("Pt moved from Mobile last year.", "Mobile"),
        ("Lives in Plant City with son.", "Plant City"),
        ("pt is originally from haiti", "haiti"),
        ("Goiânia", "Goiânia"),
    ],
)
def test_gazetteer_places_caught(lexicon: Lexicon, text: str, place: str) -> None:
    assert place in found(PlaceNameRecognizer(lexicon), text)


@pytest.mark.parametrize(
    "text",
    [
        "normal saline 1L given, NSR on monitor",  # "Normal", Illinois
        "MOBILE X-RAY AT BEDSIDE, NORMAL SINUS RHYTHM",
        "Mobile unit arrived. Bath given.",  # capitalised but no cue before them
        "plant based diet, hope to wean, pt to bath",
        "Pt to MICU from ED, north wing",
        "Pt Came In Today. Then boston in lower case within well-cased text.",
    ],
)
def test_gazetteer_ordinary_words_left_alone(lexicon: Lexicon, text: str) -> None:
    assert found(PlaceNameRecognizer(lexicon), text) == []


@pytest.mark.parametrize("text", [CLINICAL_NOISE, CLINICAL_NOISE.upper(), CLINICAL_NOISE.lower()])
def test_new_recognizers_leave_clinical_shorthand_alone(lexicon: Lexicon, text: str) -> None:
    for recognizer in (PlaceNameRecognizer(lexicon), OrganizationRecognizer(lexicon)):
        assert found(recognizer, text) == [], type(recognizer).__name__


@pytest.mark.parametrize(
    ("text", "organization"),
    [
        ("Pt reports he works at Harbor Freight in Quincy.", "Harbor Freight"),
        ("works as a teacher at dunmore logistics. started sertraline", "dunmore logistics"),
        ("WORKS AS A TEACHER AT QUINLAN & ROSS. STARTED SERTRALINE", "QUINLAN & ROSS"),
        ("son is a student at the Kessler School", "Kessler School"),
        ("employed by Okafor Widgets LLC since 2001", "Okafor Widgets LLC"),
    ],
)
def test_employers_caught(lexicon: Lexicon, text: str, organization: str) -> None:
    assert organization in found(OrganizationRecognizer(lexicon), text)


@pytest.mark.parametrize(
    "text",
    ["works at home", "WORKS FOR HIMSELF", "went to nursing school", "retired from the post office",
     "medical school graduate", "works in construction"],
)
def test_employers_left_alone(lexicon: Lexicon, text: str) -> None:
    assert found(OrganizationRecognizer(lexicon), text) == []


@pytest.mark.parametrize(
    ("text", "ward"),
    [("UNIT: FINARD 4, LAKE VALLEY HOSPITAL", "FINARD 4"), ("pt transferred to finard 4 this am", "finard 4"),
     ("Admitted to Okafor 10 overnight", "Okafor 10")],
)
def test_named_wards_caught(lexicon: Lexicon, text: str, ward: str) -> None:
    assert ward in found(HospitalRecognizer(lexicon), text)


@pytest.mark.parametrize(
    "text", ["pt on lasix 40, on levo 5", "MICU and CCU beds full", "transferred to micu 6", "on heparin 12 units"]
)
def test_ward_rule_leaves_doses_and_units_alone(lexicon: Lexicon, text: str) -> None:
    assert found(HospitalRecognizer(lexicon), text) == []


@pytest.mark.parametrize(
    ("text", "town"),
    [
        ("pt from north loriville, lives w/ niece", "north loriville"),
        ("new brendaton ems brought pt in after fall", "brendaton"),
        ("sister driving up from jeremyton tonight", "jeremyton"),
        ("Family from Kellyhaven arrived.", "Kellyhaven"),
        ("PT HAD BEEN IN WEST CRISTIANPORT VISITING", "WEST CRISTIANPORT"),
    ],
)
def test_towns_missing_from_the_gazetteer_guessed(lexicon: Lexicon, text: str, town: str) -> None:
    assert any(town in place or place in town for place in found(PlaceNameRecognizer(lexicon), text))


@pytest.mark.parametrize(
    "text",
    ["switched from cefepime to meropenem", "pt in afib, from ccu to radiology", "hem/onc following, flush hub",
     "ABX CHANGED FROM ZOSYN. IN NSR."],
)
def test_town_guesses_leave_drugs_and_units_alone(lexicon: Lexicon, text: str) -> None:
    assert found(PlaceNameRecognizer(lexicon), text) == []


def test_partner_lists_and_service_words(lexicon: Lexicon) -> None:
    text = "WORKS FOR CHRISTENSEN, WOODS AND WHITE. ADMITTED TO 11 COOK."
    assert "CHRISTENSEN, WOODS AND WHITE" in found(OrganizationRecognizer(lexicon), text)
    assert "11 COOK" in found(HospitalRecognizer(lexicon), text)
    doses = "increased to 40 mg, to 2 tabs, weaned to 4 liters, up to 10 mcg, back to 5 pm"
    assert found(HospitalRecognizer(lexicon), doses) == []


def test_pager_after_at_sign(detector: PhiDetector) -> None:
    text = "dr roy paged @ 5986, no call back"
    assert any(text[s.start : s.end] == "5986" and s.entity_type == "PHONE" for s in detector.detect(text))


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("pt extubated 7/27/73 per rantulo. sx for thick secretions", "rantulo"),
        ("call back at 740-608-6118. d/w mehbar cm.", "mehbar"),
        ("raivo (resident) and dr owen at bedside", "raivo"),
        ("D/W IVARS CM RE: DISPO", "IVARS"),
    ],
)
def test_staff_named_by_surname_after_reporting_cues_or_before_roles(detector: PhiDetector, text: str, name: str) -> None:
    assert any(text[s.start : s.end] == name and s.entity_type == "CLINICIAN" for s in detector.detect(text))


@pytest.mark.parametrize(
    "text",
    ["per protocol, per ccu team, d/w pharmacy, paged covering", "3 cm wound, nursing home resident, the attending",
     "PER PROTOCOL. D/W PHARMACY. NURSING HOME RESIDENT."],
)
def test_reporting_cues_and_roles_leave_ordinary_words_alone(detector: PhiDetector, text: str) -> None:
    assert detector.detect(text) == []


def test_multi_word_ordinary_places_need_a_cue_without_case(lexicon: Lexicon) -> None:
    recognizer = PlaceNameRecognizer(lexicon)
    assert "UNIVERSITY HEIGHTS" in found(recognizer, "UNIVERSITY HEIGHTS EMS BROUGHT PT IN")
    assert "blue ash" in found(recognizer, "sister driving up from blue ash tonight")
    assert found(recognizer, "pt in normal sinus, bath given, blue ash colored stool") == []


@pytest.mark.parametrize(
    ("text", "name", "not_name"),
    [
        ("lives w/ niece michael. works at browning and sons.", "michael", "works"),
        ("wife bolo and neighbor brandon at bedside", "brandon", "neighbor"),
        ("NEIGHBOR JOSEPH AND DTR LINDA AT BEDSIDE", "LINDA", "DTR"),
    ],
)
def test_names_stop_at_sentence_ends_and_relation_words(
    detector: PhiDetector, text: str, name: str, not_name: str
) -> None:
    spans = detector.detect(text)
    flagged = [text[s.start : s.end] for s in spans]
    assert any(name in piece for piece in flagged)
    assert not any(not_name in piece.split() for piece in flagged)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("PT WAS UPDATED; HCP IS NUBEK KRASTINS. PCP AWARE", "NUBEK KRASTINS"),
        ("DISCHARGE SUMMARY  PATIENT: FJARKI C. KUNDZINS    MRN: 76-217-84", "FJARKI C. KUNDZINS"),
    ],
)
def test_upper_case_links_and_headers_announce_names(detector: PhiDetector, text: str, name: str) -> None:
    assert any(text[s.start : s.end] == name for s in detector.detect(text))


@pytest.mark.parametrize("text", ["Pt: alert and oriented. PT: TOLERATING DIET.", "WIFE IS AT BEDSIDE. SON WAS HERE."])
def test_headers_and_links_leave_ordinary_words_alone(detector: PhiDetector, text: str) -> None:
    assert detector.detect(text) == []


def test_state_goes_with_the_zip_code(detector: PhiDetector) -> None:
    text = "lives at 824 brooks st, douglasshire, fl 48437. previously independent"
    assert covered(text, detector.detect(text), "fl 48437")
    assert not touched(text, detector.detect(text), "previously independent")


def test_postal_codes_after_places_and_unit_numbers(detector: PhiDetector) -> None:
    text = "lives in Boston 02114, apt 4B; sister in Uruguay 64677. In Boston 2000 mg given; moved to Boston 2015."
    flagged = [text[s.start : s.end] for s in detector.detect(text)]
    assert "Boston 02114" in flagged and "Uruguay 64677" in flagged and "apt 4B" in flagged
    assert "Boston 2000" not in flagged and "Boston 2015" not in flagged


def test_two_capitalised_unknown_words_are_a_name(detector: PhiDetector) -> None:
    text = "Producer Vilhjálmur Georgsson explained it. Then Stefanía Oddgeirsdóttir spoke."
    flagged = [text[s.start : s.end] for s in detector.detect(text)]
    assert "Vilhjálmur Georgsson" in flagged and "Stefanía Oddgeirsdóttir" in flagged
    prose = "Patients On Zosyn And Vancomycin Were Compared With Controls."  # title-case heading of known words
    assert detector.detect(prose) == []


def test_machine_timestamps_are_one_date_but_clock_times_stay_out(detector: PhiDetector) -> None:
    text = "When: 2000-04-16 11:34:35 Where: clinic. Exported 2021-03-12T08:15:00Z; lasix 3/12 0800 given"
    flagged = [text[s.start : s.end] for s in detector.detect(text)]
    assert "2000-04-16 11:34:35" in flagged and "2021-03-12T08:15:00Z" in flagged
    assert "3/12" in flagged and not any("0800" in piece for piece in flagged)


@pytest.mark.parametrize(
    "text", ["bp 156/94 on amlodipine 10 mg, on metoprolol 25, on losartan 100", "ON AMLODIPINE 10 MG. ON METOPROLOL 25."]
)
def test_ward_rule_leaves_drugs_with_doses_alone(lexicon: Lexicon, text: str) -> None:
    assert found(HospitalRecognizer(lexicon), text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Transferred to Rehab Hospital of the Cape and Islands.", "Rehab Hospital of the Cape and Islands"),
        ("Children's Hospital of Philadelphia f/u in 2 wks", "Children's Hospital of Philadelphia"),
        ("seen at Medical Center of Central Georgia ED", "Medical Center of Central Georgia"),
    ],
)
def test_facility_named_after_its_type(lexicon: Lexicon, text: str, expected: str) -> None:
    assert expected in [text[r.start : r.end] for r in HospitalRecognizer(lexicon).analyze(text, [])]


@pytest.mark.parametrize("text", ["pt's hospital of choice is far", "went to the hospital of his choice", "in the clinic of Dr. Smith"])
def test_facility_word_of_an_ordinary_phrase(lexicon: Lexicon, text: str) -> None:
    assert HospitalRecognizer(lexicon).analyze(text, []) == []


def test_saint_without_apostrophe_is_a_hospital_only_for_a_given_name(lexicon: Lexicon) -> None:
    recognizer = HospitalRecognizer(lexicon)
    found = [text[r.start : r.end] for text in ["pt was at st elizabeths until 2/2"] for r in recognizer.analyze(text, [])]
    assert found == ["st elizabeths"]
    for text in ["new st changes on ekg", "st depressions noted", "st segments flat"]:
        assert recognizer.analyze(text, []) == []


@pytest.mark.parametrize(
    "text", ["WILL NEED HOSPICE REFERRAL PER PALLIATIVE CARE.", "awaiting rehab center bed", "considering hospice care"]
)
def test_a_verb_before_a_facility_word_is_not_its_name(lexicon: Lexicon, text: str) -> None:
    assert HospitalRecognizer(lexicon).analyze(text, []) == []
