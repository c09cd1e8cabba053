"""The kinds of PHI that real nursing notes write in shapes the first rules missed, and the
look-alikes each new rule must leave alone. Every text is made up for the test."""

from __future__ import annotations

import pytest

from deid.recognizers.address import AddressRecognizer
from deid.recognizers.base import ClinicalRecognizer
from deid.recognizers.dates import DateRecognizer
from deid.recognizers.dictionary_name import DictionaryNameRecognizer
from deid.recognizers.hospital import HospitalRecognizer
from deid.recognizers.lexicon import Lexicon
from deid.recognizers.organization import OrganizationRecognizer
from deid.recognizers.phone import PhoneRecognizer
from deid.recognizers.titled_name import TitledNameRecognizer


def found(recognizer: ClinicalRecognizer, text: str) -> list[str]:
    return sorted(text[r.start : r.end] for r in recognizer.analyze(text, []))


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("PRESENT HX:4/22 FELL AT HOME, WEAK SINCE", "4/22"),  # a header's colon before it
        ("UO LOW-4/19 GIVEN DIURETIC WITH GOOD EFFECT", "4/19"),
        ("echo 3/91 showed mild MR, no change since", "3/91"),  # month and two-digit year
        ("was intubated 5/28-6/3 for pneumonia at the other hospital", "5/28-6/3"),
        ("Note 4/12    Cardiac: sinus rhythm, no ectopy seen", "4/12"),  # "cardiac" holds "ac"
        ("4/3-INITIAL EVENTS: found down at home by neighbour", "4/3"),  # "events" holds "vent"
    ],
)
def test_month_day_shapes_found(text: str, date: str) -> None:
    assert date in found(DateRecognizer(), text)


@pytest.mark.parametrize(("text", "year"), [("PMH: CVA 83'. APPY 61'.", "83"), ("AAA REPAIR IN 07' C/B DVT", "07")])
def test_year_with_trailing_apostrophe_found(text: str, year: str) -> None:
    assert year in found(DateRecognizer(), text)


@pytest.mark.parametrize(
    "text",
    [
        "ambulated 30' in hall with PT, tolerated well",  # feet walked
        "remains on CPAP .4%, 5/10. abg pending",  # ventilator settings
        "SIMV 600x12, 40%, & 5/8. sats acceptable",
        "placed on AC 600x20/5/50% with better abg",
        "neuro: sedated, perrla, 3/3 brisk",  # pupils
        "currently on 1/2 ns at 75cc/hr for hydration",  # a fraction, whatever leads in
    ],
)
def test_settings_distances_and_pupils_are_not_dates(text: str) -> None:
    assert found(DateRecognizer(), text) == []


def test_clock_time_after_approx_is_not_a_year() -> None:
    assert "1900" not in found(DateRecognizer(), "SON TO ARRIVE @ APPROX 1900 FROM AIRPORT")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("his wife (617/555/0143) confirms the history", "617/555/0143"),
        ("SOCIAL: SON-JOE---508 555-0199 & DAUGHTER", "508 555-0199"),
    ],
)
def test_phone_numbers_with_slashes_or_after_a_dash_found(text: str, number: str) -> None:
    assert number in found(PhoneRecognizer(), text)


def test_approx_is_not_an_extension_label() -> None:
    assert found(PhoneRecognizer(), "family to visit approx 1930 tonight") == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("METABOLIC ALKALOSIS. DR.OKAFOR AWARE, DIAMOX GIVEN", "OKAFOR"),  # glued to the dot
        ("AFTER LONG TALK W/DR. KOWALSKI/RN, FAMILY AGREED", "KOWALSKI"),  # credential after a slash
        ("Plan discussed with Dr. Ng/Haas at the bedside.", "Ng/Haas"),  # two clinicians, one title
    ],
)
def test_clinician_names_against_dots_and_slashes_found(lexicon: Lexicon, text: str, name: str) -> None:
    assert name in found(TitledNameRecognizer(lexicon), text)


def test_credential_after_slash_is_not_part_of_the_name(lexicon: Lexicon) -> None:
    text = "AFTER LONG TALK W/DR. KOWALSKI/RN, FAMILY AGREED"
    assert "KOWALSKI/RN" not in found(TitledNameRecognizer(lexicon), text)


@pytest.mark.parametrize(
    ("text", "institution"),
    [
        ("PT WAS TRANSFERRED TO ZMC THIS EVENING FOR CATH", "ZMC"),  # acronym after a movement cue
        ("found unresponsive, brought to ZMC ER by ambulance", "ZMC"),  # before a department
        ("stable overnight, plan transfer to brennerton today", "brennerton"),  # a building no list knows
    ],
)
def test_institutions_after_movement_cues_found(lexicon: Lexicon, text: str, institution: str) -> None:
    assert institution in found(HospitalRecognizer(lexicon), text)


@pytest.mark.parametrize(
    "text",
    [
        "PT TRANSFERRED TO CCU FROM OSH OVERNIGHT, STABLE",
        "C/O to ortho floor for PT, comfortable",
        "PT IN ATRIAL TACH WITH 2 TO 1 BLOCK, TO START LOPRESSOR",
        "SATS DROPPING TO HIGH 80'S OFF O2, BACK ON NC",
        "DIURESING WELL - TOTAL 2.5 LITERS NEGATIVE TODAY",
    ],
)
def test_units_readings_and_ratios_are_not_institutions(lexicon: Lexicon, text: str) -> None:
    assert found(HospitalRecognizer(lexicon), text) == []


def test_ward_named_after_a_word_surname_after_a_firm_cue(lexicon: Lexicon) -> None:
    assert "6 BAKER" in found(HospitalRecognizer(lexicon), "ADMITTED 3/2/19 TO 6 BAKER, STABLE OVERNIGHT ON NC")


def test_military_mail_address_found(lexicon: Lexicon) -> None:
    text = "please send the records to PSC 4821, Box 0917 APO AE 09316 by mail"
    assert "PSC 4821, Box 0917 APO AE 09316" in found(AddressRecognizer(lexicon), text)


@pytest.mark.parametrize(
    "text",
    ["one unit prbc ready in blood bank, blood bank to call when more ready",
     "sternal inc with vac to suction, drsg dry and intact, no drainage overnight"],
)
def test_hospital_departments_and_incisions_are_not_firms(lexicon: Lexicon, text: str) -> None:
    assert found(OrganizationRecognizer(lexicon), text) == []


@pytest.mark.parametrize(
    ("text", "institution"),
    [("PATIENT PRESENTED TO U OF XQ MED CENTER ON ARRIVAL", "U OF XQ MED CENTER"),
     ("to f/u w/ Brennan Valley Heart Center, phone given", "Brennan Valley Heart Center")],
)
def test_med_and_heart_centers_found(lexicon: Lexicon, text: str, institution: str) -> None:
    assert institution in found(HospitalRecognizer(lexicon), text)


def test_colours_that_are_given_names_need_a_relation(lexicon: Lexicon) -> None:
    text = "urine clear amber, pupils pearl and brisk. daughter Amber at the bedside all evening."
    names = found(DictionaryNameRecognizer(lexicon), text) + found(TitledNameRecognizer(lexicon), text)
    assert "Amber" in names and "amber" not in names and "pearl" not in names


def test_mental_status_header_is_no_honorific(lexicon: Lexicon) -> None:
    text = "MS: Pt tearful and anxious, reoriented often. Seen by Dr. Okafor this afternoon."
    assert found(TitledNameRecognizer(lexicon), text) == ["Okafor"]


def test_lower_case_surname_before_aware_in_a_mixed_case_note(lexicon: Lexicon) -> None:
    text = "Pedal pulses weak. Spoke to team. r dp difficult to doppler, brennicott aware. Plan unchanged."
    assert "brennicott" in found(TitledNameRecognizer(lexicon), text)


def test_lower_case_university_hospital_in_a_mixed_case_note(lexicon: Lexicon) -> None:
    text = "Pt recieved from university of maryland hospital. Pt intubated on arrival, sedated."
    assert "university of maryland hospital" in found(HospitalRecognizer(lexicon), text)


def test_building_named_after_a_person_before_a_unit(lexicon: Lexicon) -> None:
    assert "Okafor" in found(HospitalRecognizer(lexicon), "Pt improved and was transferred to Okafor MICU overnight.")


def test_given_name_used_for_evening_is_neither_ward_nor_name(lexicon: Lexicon) -> None:
    text = "repeat hct from eve 27, team aware, no orders for transfusion at this time"
    assert found(HospitalRecognizer(lexicon), text) == [] and found(DictionaryNameRecognizer(lexicon), text) == []
