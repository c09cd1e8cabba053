"""Many short pieces of one document's prose scanned as one text, then split back.

HL7 v2 reports arrive one line per OBX segment and C-CDA narrative is text scattered over
table cells and inline elements, so a name or date broken over two pieces ("Dr. John" /
"Smith was called") is only recognisable when the pieces are read together. The pieces are
joined with separators that reflect the layout, detected once (one detector call per message
or section, not one per piece), and each detected span is replaced where it starts: a span
that runs over into the next piece puts its replacement in the first and removes the rest.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from deid.anonymize.operators import CORPUS_SCOPE, AppliedSpan
from deid.detection.entities import Entity
from deid.detection.known_phi import KnownPhi
from deid.readers.base import ReaderContext
from deid.readers.patients import PatientIndex


def scrub_pieces(
    context: ReaderContext,
    texts: Sequence[str],
    separators: Sequence[str],
    patient: str,
    known: Sequence[KnownPhi],
    field: str,
) -> tuple[list[str], list[AppliedSpan]]:
    """``texts`` de-identified as one document joined by ``separators`` (one fewer than texts);
    the applied spans are offsets into that joined document."""
    if len(separators) != max(len(texts) - 1, 0):
        raise ValueError("one separator between each pair of pieces")
    starts: list[int] = []
    cursor = 0
    for index, text in enumerate(texts):
        starts.append(cursor)
        cursor += len(text) + (len(separators[index]) if index < len(separators) else 0)
    joined = "".join(text + (separators[i] if i < len(separators) else "") for i, text in enumerate(texts))
    if not joined.strip():
        return list(texts), []
    _, applied = context.scrubber.scrub(joined, patient, known_phi=known, field=field)
    edits: list[list[tuple[int, int, str]]] = [[] for _ in texts]
    anonymizer = context.anonymizer
    for span in applied:
        # The anonymizer is deterministic (keyed surrogates, per-patient shifts), so asking it
        # again for this span gives the replacement the scrubber wrote into ``joined``; a
        # facility made only of generic words gets a real replacement (see facility_surrogate).
        original = joined[span.start : span.end]
        if span.entity_type == Entity.HOSPITAL.value:
            replacement, _ = facility_surrogate(context, original, patient)
        else:
            replacement, _ = anonymizer.replace(original, span.entity_type, patient)
        placed = False
        index = max(bisect_right(starts, span.start) - 1, 0)  # the piece the span starts in
        while index < len(texts) and starts[index] < span.end:
            start, end = starts[index], starts[index] + len(texts[index])
            low, high = max(span.start, start), min(span.end, end)
            if low < high:
                edits[index].append((low - start, high - start, "" if placed else replacement))
                placed = True
            index += 1
    out = []
    for text, changes in zip(texts, edits, strict=True):
        for low, high, replacement in sorted(changes, reverse=True):
            text = text[:low] + replacement + text[high:]
        out.append(text)
    return out, applied


def facility_surrogate(context: ReaderContext, value: str, patient: str) -> tuple[str, str]:
    """(replacement, operator) for a facility name in a structured field. The surrogate
    factory keeps a name's generic words, so a name made only of them ("Community Health and
    Hospitals") would come back unchanged: in a field that holds nothing but the name, its
    leading word gives way to a keyed surname and the last, the kind of place, stays."""
    anonymizer = context.anonymizer
    replaced, operator = anonymizer.replace(value, Entity.HOSPITAL.value, patient)
    if replaced.strip().casefold() != value.strip().casefold():
        return replaced, operator
    words = value.split()
    surname = anonymizer.surrogates.name_token(f"{words[0]}-facility", CORPUS_SCOPE)
    fake = f"{surname} {words[-1]}" if len(words) > 1 else surname
    return anonymizer.surrogates.register(value, fake), "surrogate"


def person_surrogate(context: ReaderContext, value: str, entity: str, patient: str) -> tuple[str, str]:
    """(replacement, operator) for a name part in a structured name field. In prose the
    factory keeps role words ("Patient", "Nurse"); in a given or family name field such a word
    is the name, so it is replaced like any other."""
    anonymizer = context.anonymizer
    replaced, operator = anonymizer.replace(value, entity, patient)
    if replaced.strip().casefold() != value.strip().casefold():
        return replaced, operator
    fake = anonymizer.surrogates.name_token(f"{value.strip()}-name", anonymizer.scope(entity, patient))
    return anonymizer.surrogates.register(value, fake), "surrogate"


def patient_scope(context: ReaderContext, mrn: str) -> tuple[str, Sequence[KnownPhi]]:
    """The scope (surrogates, date shift) of the patient an HL7 v2 message or a CDA document
    names by MRN, and what else is known about them. A FHIR Patient in the same run that
    carries the MRN as an identifier is that patient; otherwise the MRN itself is the key, so
    an ADT message, an ORU report and a CCD of one patient still agree with each other."""
    lookup = context.patients
    if isinstance(lookup, PatientIndex):
        resource_id = lookup.patient_with_identifier(mrn)
        if resource_id is not None:
            return f"patient:{resource_id}", lookup.known_phi(resource_id)
    return f"patient:mrn:{mrn}", ()
