"""Generate the clinical-style development set ``bench/data/clinical_dev.jsonl``.

Each line is ``{"id", "style", "text", "spans": [{"start", "end", "label"}]}``. Notes are built
from varied templates (ICU nursing notes, progress notes, discharge summaries, social work, clinic
letters, telephone encounters, radiology) full of clinical shorthand that must NOT be flagged
(vitals, labs, doses, "foley", "cv", "O2", "q2", "today"), with realistic PHI planted in slots;
every span's offsets are checked against the planted value before writing. A third of the notes
are rendered ALL CAPS and a fifth all lower case, as hospitals write them.

To measure generalisation rather than memorisation, 40% of person names come from Faker locales
the detector's lexicon never loads (``HELD_OUT_LOCALES``) or are invented syllable strings, so
they can only be found through context.

Run: ``.venv/bin/python bench/data/make_clinical_notes.py`` (deterministic, seed 7).
"""

from __future__ import annotations

import json
import random
import re
import string
import unicodedata
from collections.abc import Callable
from pathlib import Path

from faker import Faker

from deid.recognizers.lexicon import FAKER_LOCALES

TARGET = Path(__file__).with_name("clinical_dev.jsonl")
SEED = 7
NOTES = 400
HELD_OUT_LOCALES = ("et_EE", "sl_SI", "lv_LV", "is_IS", "az_AZ", "tw_GH")
assert not set(HELD_OUT_LOCALES) & set(FAKER_LOCALES), "held-out locales must stay out of the lexicon"

MONTHS = "January February March April May June July August September October November December".split()
SLOT = re.compile(r"\{([A-Z_0-9]+)(?::([a-z_]+))?\}")

TEMPLATES = [
    # ICU nursing notes, telegraphic
    "Nursing Progress Note 0700-1900\nNeuro: A&Ox3, MAE, follows commands, PERRL 3mm brisk. Denies pain.\n"
    "CV: HR 88-102 NSR, no ectopy. BP 120/80 - 138/76. K 4.1, Mg 2.0 repleted.\nResp: LS clear, O2 sat 98% on 2L NC, "
    "RR 18. IS x10 q1h.\nGI: abd soft, +BS, tolerating TF at goal 60cc/hr.\nGU: foley draining clear yellow urine 40-60cc/hr.\n"
    "Social: {REL} {PATIENT:first} in to visit, updated by Dr. {CLINICIAN:last}. Call {REL2} at {PHONE} with changes.\n"
    "Plan: cont lasix 20mg IV q12, monitor lytes, ? transfer to floor {DATE:md}.",
    "Pt is a {AGE_OVER_89} yo female admitted {DATE:mdy} from {HOSPITAL} w/ urosepsis. Alert, pleasant, hard of hearing. "
    "VSS, afebrile today. HR 70s SR, SBP 110s. Lungs coarse bilat, sx for mod amt thick tan sputum. Voiding via foley. "
    "Skin intact, turned q2h. {REL} {PATIENT:full} called this am and was updated; HCP is {PATIENT:full}. "
    "PCP Dr {CLINICIAN:full}, pager {PAGER}.",
    "S: 'I want to go home.' O: T 98.6 HR 92 BP 142/88 RR 20 SpO2 95% RA. A: CHF exacerbation, improving. "
    "P: cont diuresis, daily wts, strict I/O. D/w {CLINICIAN:full}, MD. Family meeting planned {DATE:month_day} at 2pm "
    "with {REL} {PATIENT:full} ({PHONE}). {PATIENT:mr} tolerating diet.",
    "MICU Nursing Admission Note\nPt {PATIENT:full}, MRN {MRN}, DOB {DATE:mdyyyy}, transferred from {HOSPITAL} "
    "ED via ambulance for hypotension. Code status: DNR/DNI per {REL} {PATIENT:first} (HCP). Allergies: PCN (rash).\n"
    "Levophed 0.08 mcg/kg/min, MAP > 65. Vanco/zosyn started. Lactate 3.2 -> 2.1. WBC 18.4. Cr 2.3 (baseline 1.1).\n"
    "Lives at {ADDRESS} with {REL}. Attending: Dr. {CLINICIAN:last}.",
    # Progress and discharge summaries
    "DISCHARGE SUMMARY\n\nPatient: {PATIENT:full}    MRN: {MRN}    DOB: {DATE:mdyyyy}\nAdmitted: {DATE:mdyyyy}    "
    "Discharged: {DATE:mdyyyy}\nAttending: {CLINICIAN:full}, MD    Unit: {WARD}, {HOSPITAL}\n\n"
    "HPI: {AGE} yo M w/ hx of CAD s/p CABG ('{YEAR2}), AFib on apixaban, DM2 (HbA1c 7.9), presented on {DATE:md} with SOB "
    "and bilateral LE edema. BNP 1200. CXR: pulmonary edema.\n\nHOSPITAL COURSE: Diuresed w/ IV furosemide 40 mg BID. "
    "Foley placed {DATE:md}, removed {DATE:md}. O2 weaned from 4L NC to RA. Echo {DATE:dmy} EF 35%.\n\n"
    "DISPO: Home w/ VNA. F/u Dr. {CLINICIAN:last} in cardiology clinic {DATE:iso}. Questions: {PHONE} or {EMAIL}.",
    "Progress Note - Medicine\nInterval: No acute events overnight. Pt ambulating w/ PT. Pain 3/10 controlled w/ tylenol 650 mg "
    "q6h prn.\nExam: NAD. RRR, no m/r/g. CTAB. Abd soft NT/ND. 1+ edema bilat LE. 4/5 strength RLE.\nLabs: Na 136, K 3.8, "
    "Cl 101, HCO3 24, BUN 22, Cr 1.0, Glu 145. Hct 31.2. INR 2.4 on coumadin 5 mg.\nA/P: {AGE} yo {SEX} with PNA, "
    "day 4 of ceftriaxone/azithro. Likely d/c {DATE:weekday}. Case discussed with {CLINICIAN:full} (attending).\n"
    "{CLINICIAN:full}, PGY-2, pager {PAGER}",
    "Pt seen and examined with resident. Agree with findings and plan as documented. {PATIENT:full} is a {AGE_OVER_89} y/o "
    "man with severe AS, not a TAVR candidate per {HOSPITAL} structural team ({DATE:month_day_year}). Goals of care "
    "reviewed with {REL} {PATIENT:first} and {REL2} {PATIENT:full}; comfort-focused care. -- {CLINICIAN:full}, MD",
    # Social work, case management, telephone
    "SOCIAL WORK NOTE\nMet with pt and {REL}, {PATIENT:full}, at bedside. Pt lives alone at {ADDRESS}, {CITYSTATEZIP}. "
    "Previously independent w/ ADLs. {REL2} {PATIENT:first} lives in {CITY} and visits weekly. Insurance: Medicaid ID "
    "{HEALTHPLAN}. Referral faxed to {HOSPITAL} (fax {FAX}). Will f/u {DATE:md}.",
    "Telephone Encounter {DATE:mdyyyy} 10:42\nCaller: {PATIENT:full} ({REL} of pt)\nCallback: {PHONE}\nReason: question re: "
    "metoprolol 25 mg BID and lisinopril 10 mg daily. BP at home 130s/80s. Advised to continue. Routed to "
    "{CLINICIAN:full}, NP.",
    "Case Management: Pt's {REL} {PATIENT:full} requested transfer to {HOSPITAL} closer to home in {CITY}. Acct # {ACCOUNT}. "
    "Auth pending w/ insurer, member ID {HEALTHPLAN}. Pt's SSN {SSN} verified by registration. Will call {PHONE} tomorrow.",
    # Clinic letters, radiology, procedures, devices
    "{DATE:month_day_year}\n\nRe: {PATIENT:full}\nDOB: {DATE:mdyyyy}\n\nDear Dr. {CLINICIAN:last},\n\nThank you for referring "
    "{PATIENT:mr_mrs}, a {AGE} year old with resistant HTN. BP today 156/94 on amlodipine 10 mg, HCTZ 25 mg, losartan 100 mg. "
    "Renal artery duplex unremarkable. Plan: add spironolactone 25 mg, BMP in 1 wk.\n\nSincerely,\n{CLINICIAN:full}, MD\n"
    "{HOSPITAL}\n{ADDRESS}\n{CITYSTATEZIP}\nTel {PHONE}  Fax {FAX}",
    "CT CHEST W/O CONTRAST {DATE:mdyyyy}\nCOMPARISON: {DATE:mdyy}. INDICATION: {AGE} yo w/ cough. FINDINGS: 6 mm RUL nodule, "
    "stable. No effusion. IMPRESSION: Stable nodule; f/u CT in 12 months. Dictated by {CLINICIAN:full}, MD. "
    "Accession {ACCESSION}.",
    "Procedure: PPM interrogation. Device: dual-chamber pacemaker, serial # {DEVICE}. Battery 8.5 yrs. Pacing 12% A, 3% V. "
    "No events. Pt {PATIENT:full} tolerated well. Next check {DATE:month_year}. Remote monitoring via {URL}; "
    "transmitter IP {IP}.",
    "ED Triage: {AGE} yo {SEX} MVC restrained driver, vehicle VIN {VIN}, plate {PLATE}. GCS 15. c/o neck pain 6/10. "
    "C-collar placed. Brought in by {HOSPITAL} EMS. Pt's {REL} {PATIENT:full} en route, cell {PHONE}. "
    "Pt reports he works at {COMPANY} in {CITY}.",
    "Addendum: Spoke with {CLINICIAN:full} from pharmacy re: vanco trough 22.4 -> hold 0800 dose, recheck in am. Also paged "
    "Dr. {CLINICIAN:last} (x{EXT}) re: K 5.6, ordered kayexalate 30 g po x1, repeat lytes q6h. Pt's {REL} {PATIENT:first} "
    "aware. RN {CLINICIAN:first}.",
    "NEONATAL NOTE: Infant {PATIENT:last} boy, DOL 3, born {DATE:mdy} at {HOSPITAL} to G2P2 mom {PATIENT:full}. Wt 3.2 kg. "
    "Feeding well, bili 11.2 at 60 hrs, below phototherapy threshold. Hep B vaccine given. Peds f/u Dr {CLINICIAN:full} "
    "{DATE:md}.",
    "Pt {PATIENT:last} {PATIENT:first} is a {AGE_OVER_89}yo with dementia from {HOSPITAL}. Pleasantly confused, OOB to chair "
    "w/ assist x2. Eating 50% of meals. Sacral stage II ulcer, wound RN {CLINICIAN:full} consulted. {REL} visited {DATE:weekday}, "
    "lives at {ADDRESS}.",
    "Resp Therapy: Pt on CPAP 10/5 FiO2 40%, ABG 7.38/42/88. RSBI 65. SBT passed x30 min. Extubated at 1400 to 4L NC per "
    "Dr. {CLINICIAN:last}. Cough strong. Sputum thin white. RT {CLINICIAN:full}.",
    "Hem/Onc f/u: {PATIENT:full}, {AGE} yo {SEX}, DLBCL s/p R-CHOP x6 (last cycle {DATE:month_year}). PET {DATE:dmy}: CR. "
    "Hgb 12.1, plt 210, ANC 3.4. Seen at {HOSPITAL} infusion center. Next visit {DATE:md} w/ Dr. {CLINICIAN:last}. "
    "Portal msg via {EMAIL}.",
    "Discussed with pt's daughter {PATIENT:full} and son {PATIENT:first} by phone ({PHONE}); they agree with hospice "
    "referral. Pt to go to {HOSPITAL} on {DATE:month_day}. Morphine 2 mg SL q2h prn dyspnea. Dr {CLINICIAN:last} aware.",
    "Psych consult: {AGE} yo {SEX} w/ MDD, SI w/o plan. Lives with boyfriend {PATIENT:first} in {CITY}. Works as a teacher at "
    "{COMPANY}. Started sertraline 50 mg. Safety plan reviewed. Outpt f/u at {HOSPITAL} on {DATE:mdy}. {CLINICIAN:full}, MD "
    "(Psychiatry), pager {PAGER}.",
    "Wound care: R heel ulcer 2x3 cm, granulating, no odor. Dressing changed w/ santyl + kerlix. Podiatry Dr {CLINICIAN:full} "
    "to see {DATE:weekday}. Pt {PATIENT:full} (MRN {MRN_LABELLED}) reports pain 2/10. Next change {DATE:md}.",
    "Anesthesia preop: {PATIENT:full}, {AGE} y, ASA 3. Airway Mallampati II. NPO since midnight. Consent signed {DATE:mdyy} "
    "witnessed by {CLINICIAN:full}, RN. License # {LICENSE} on file for anesthesiologist {CLINICIAN:full}.",
]

STREETS = "Main St|Elm Street|Oak Ave|Maple Drive|Washington Blvd|Cedar Lane|Pleasant St|Highland Ave|Park Rd|Lakeview Terrace"
WARDS = ["5 West", "4 East", "Ward 7", "7 North", "Finard 4", "Ward B", "6 South"]
HOSPITAL_FORMS = [
    "{x} General Hospital", "{x} Medical Center", "St. {x}'s Hospital", "{x} Memorial Hospital", "{x} Nursing Home",
    "{x} Rehabilitation Center", "{x} Community Hospital", "{x} Clinic", "{x} Valley Hospital", "{x} Hospice",
]
RELATIONS = ["wife", "husband", "son", "daughter", "sister", "brother", "niece", "friend", "mother", "grandson"]
COMPANIES = ["Dunmore Logistics", "Harbor Freight", "the Kessler School", "Abbott Street Bakery", "Quinlan & Ross"]


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c) and ord(c) < 128)


class Planter:
    """Produces PHI values; names come from common, held-out and invented sources."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.us = Faker("en_US")
        self.us.seed_instance(SEED)
        self.held_out = [Faker(locale) for locale in HELD_OUT_LOCALES]
        for index, fake in enumerate(self.held_out):
            fake.seed_instance(SEED + index)

    def _invented(self) -> str:
        syllables = ["ka", "lo", "vin", "dre", "mar", "tu", "zel", "bo", "ran", "qui", "sha", "tor", "bek", "nu"]
        return "".join(self.rng.choice(syllables) for _ in range(self.rng.randint(2, 3))).capitalize()

    def first(self) -> str:
        roll = self.rng.random()
        if roll < 0.6:
            name = self.us.first_name()
        elif roll < 0.9:
            name = self.rng.choice(self.held_out).first_name()
        else:
            name = self._invented()
        return _ascii(name).split()[0] or "Ana"

    def last(self) -> str:
        roll = self.rng.random()
        if roll < 0.6:
            name = self.us.last_name()
        elif roll < 0.9:
            name = self.rng.choice(self.held_out).last_name()
        else:
            name = self._invented()
        return _ascii(name).split()[0] or "Kask"

    def date(self, form: str) -> str:
        rng = self.rng
        year, month, day = rng.randint(1930, 2024), rng.randint(1, 12), rng.randint(1, 28)
        forms: dict[str, Callable[[], str]] = {
            "md": lambda: f"{month}/{day}",
            "mdy": lambda: f"{month}/{day}/{year % 100:02d}",
            "mdyy": lambda: f"{month:02d}/{day:02d}/{year % 100:02d}",
            "mdyyyy": lambda: f"{month:02d}/{day:02d}/{year}",
            "iso": lambda: f"{year}-{month:02d}-{day:02d}",
            "dmy": lambda: f"{day} {MONTHS[month - 1][:3]} {year}",
            "month_day": lambda: f"{MONTHS[month - 1]} {day}",
            "month_day_year": lambda: f"{MONTHS[month - 1]} {day}, {year}",
            "month_year": lambda: f"{MONTHS[month - 1][:3]} {year}",
            "weekday": lambda: rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]),
        }
        return forms[form or "mdy"]()

    def hospital(self) -> str:
        stem = self.rng.choice([self.us.last_name(), self.us.city().split()[0], self.rng.choice(["Riverside", "Lakeshore",
                                                                                                  "Mercy", "Greenview"])])
        return self.rng.choice(HOSPITAL_FORMS).format(x=_ascii(stem))


def render(template: str, planter: Planter, rng: random.Random) -> tuple[str, list[dict[str, object]]]:
    """Fill the slots left to right, recording the offsets of every planted value."""
    pieces: list[str] = []
    spans: list[dict[str, object]] = []
    position = 0
    length = 0
    for slot in SLOT.finditer(template):
        literal = template[position : slot.start()]
        pieces.append(literal)
        length += len(literal)
        value, label = _fill(slot.group(1), slot.group(2) or "", planter, rng)
        if label is not None:
            spans.extend(_label_parts(value, label, length))
        pieces.append(value)
        length += len(value)
        position = slot.end()
    pieces.append(template[position:])
    return "".join(pieces), spans


def _label_parts(value: str, label: str, offset: int) -> list[dict[str, object]]:
    """A planted value is one gold span, except honorifics ("Mr.") which are not PHI."""
    match = re.match(r"(?:Mr\.|Mrs\.|Ms\.) ", value)
    skip = match.end() if match else 0
    return [{"start": offset + skip, "end": offset + len(value), "label": label, "text": value[skip:]}]


def _fill(kind: str, form: str, planter: Planter, rng: random.Random) -> tuple[str, str | None]:
    us = planter.us
    if kind in ("PATIENT", "CLINICIAN"):
        first, last = planter.first(), planter.last()
        forms = {
            "first": first, "last": last, "full": f"{first} {last}", "mr": f"Mr. {last}",
            "mr_mrs": f"{rng.choice(['Mr.', 'Mrs.', 'Ms.'])} {last}",
        }
        value = forms.get(form, f"{first} {last}")
        if form == "full" and rng.random() < 0.15:
            value = f"{first} {rng.choice(string.ascii_uppercase)}. {last}"
        return value, kind
    simple: dict[str, Callable[[], tuple[str, str | None]]] = {
        "REL": lambda: (rng.choice(RELATIONS), None),
        "REL2": lambda: (rng.choice(RELATIONS), None),
        "SEX": lambda: (rng.choice(["M", "F", "male", "female"]), None),
        "AGE": lambda: (str(rng.randint(19, 88)), None),
        "AGE_OVER_89": lambda: (str(rng.randint(90, 104)), "AGE_OVER_89"),
        "YEAR2": lambda: (f"{rng.randint(0, 99):02d}", "DATE"),
        "DATE": lambda: (planter.date(form), "DATE"),
        "PHONE": lambda: (rng.choice([f"({us.msisdn()[3:6]}) {us.msisdn()[6:9]}-{us.msisdn()[9:13]}",
                                      f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
                                      f"{rng.randint(201, 989)}.{rng.randint(200, 999)}.{rng.randint(1000, 9999)}"]), "PHONE"),
        "FAX": lambda: (f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}", "FAX"),
        "PAGER": lambda: (str(rng.randint(1000, 99999)), "PHONE"),
        "EXT": lambda: (str(rng.randint(1000, 9999)), "PHONE"),
        "EMAIL": lambda: (_ascii(us.email()), "EMAIL"),
        "URL": lambda: (rng.choice([f"https://{us.domain_name()}/portal", f"www.{us.domain_name()}"]), "URL"),
        "IP": lambda: (us.ipv4_private(), "IP_ADDRESS"),
        "SSN": lambda: (us.ssn(), "SSN"),
        "MRN": lambda: (rng.choice([str(rng.randint(100000, 99999999)), f"{rng.randint(10, 99)}-{rng.randint(100, 999)}-"
                                    f"{rng.randint(10, 99)}"]), "MRN"),
        "MRN_LABELLED": lambda: (str(rng.randint(1000000, 9999999)), "MRN"),
        "ACCOUNT": lambda: (str(rng.randint(10**7, 10**10)), "ACCOUNT"),
        "ACCESSION": lambda: (f"{rng.choice(['CT', 'RAD', 'A'])}{rng.randint(100000, 9999999)}", "ID"),
        "HEALTHPLAN": lambda: (f"{rng.choice(['MA', 'XJH', 'W'])}{rng.randint(10**6, 10**9)}", "HEALTH_PLAN"),
        "LICENSE": lambda: (f"{rng.choice(['MD', 'RN', ''])}{rng.randint(10000, 999999)}", "LICENSE"),
        "DEVICE": lambda: (f"{rng.choice(['PJN', 'RNA', 'SN'])}{rng.randint(100000, 9999999)}", "DEVICE"),
        "VIN": lambda: ("".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17)), "VEHICLE"),
        "PLATE": lambda: (f"{rng.randint(1, 9)}{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}"
                          f"{rng.randint(100, 999)}", "VEHICLE"),
        "ADDRESS": lambda: (f"{rng.randint(2, 9999)} {_ascii(us.last_name())} {rng.choice(STREETS.split('|')).split()[-1]}", "LOCATION"),
        "CITY": lambda: (_ascii(us.city()), "LOCATION"),
        "CITYSTATEZIP": lambda: (f"{_ascii(us.city())}, {us.state_abbr()} {us.zipcode()}", "LOCATION"),
        "WARD": lambda: (rng.choice(WARDS), "HOSPITAL"),
        "HOSPITAL": lambda: (planter.hospital(), "HOSPITAL"),
        "COMPANY": lambda: (rng.choice(COMPANIES), "ORGANIZATION"),
    }
    return simple[kind]()


def make_notes(count: int = NOTES, seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    planter = Planter(rng)
    notes = []
    for index in range(count):
        text, spans = render(TEMPLATES[index % len(TEMPLATES)], planter, rng)
        roll = rng.random()
        style = "upper" if roll < 0.3 else "lower" if roll < 0.5 else "mixed"
        if style == "upper":
            text = text.upper()
        elif style == "lower":
            text = text.lower()
        notes.append({"id": f"dev{index:04d}", "style": style, "text": text, "spans": spans})
    return notes


def verify(note: dict[str, object]) -> None:
    text = str(note["text"])
    for span in note["spans"]:  # type: ignore[union-attr]
        piece = text[span["start"] : span["end"]]
        if not piece or piece.lower() != str(span["text"]).lower():
            raise ValueError(f"{note['id']}: span offsets do not match the planted value {span}")
        span["text"] = piece


def write_notes(notes: list[dict[str, object]], target: Path) -> None:
    """Check every planted span's offsets, then write the set as JSON Lines."""
    for note in notes:
        verify(note)
    target.write_text("".join(json.dumps(note) + "\n" for note in notes), encoding="utf-8")
    print(f"{len(notes)} notes, {sum(len(n['spans']) for n in notes)} PHI spans -> {target}")


def main() -> None:
    write_notes(make_notes(), TARGET)


if __name__ == "__main__":
    main()
