"""C-CDA documents (CCDs, discharge summaries, notes): one XML file is one document.

CDA repeats a few data types everywhere (PN names, AD addresses, TEL telecom, II ids, TS
times), in the header (recordTarget, author, custodian, informant, legalAuthenticator,
participants, encompassingEncounter...) and in entries alike, so, as for FHIR, the document
is de-identified by recognising those types wherever they occur rather than by one rule per
template: a name is replaced by what it names (a person under patient, guardian or related
person; a clinician under assignedPerson; a facility under an organization or place), ids keep
their ``root`` OID (it names an assigning authority or code system) and get a corpus-wide
keyed ``extension``, and every time moves by the patient's offset at its own precision. Each
section's narrative block, with its entries' original text, is scanned as one note with the
patient's own header identity as known PHI. Comments are dropped: they are not data and
nobody can vouch for what they say. Everything else (codes, namespaces, prefixes,
``xsi:schemaLocation``, processing instructions) is written back as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from lxml import etree

from deid.anonymize.operators import CORPUS_SCOPE, AppliedSpan
from deid.detection.entities import Entity
from deid.detection.known_phi import KnownPhi
from deid.malformed import Malformed, MalformedReason
from deid.readers.base import ReaderContext, Unit, UnitResult
from deid.readers.hl7_text import (
    facility_surrogate,
    patient_scope,
    person_surrogate,
    scrub_pieces,
)
from deid.readers.hl7v2_message import parse_ts, shift_ts
from deid.readers.text import WholeFileFormat

V3 = "urn:hl7-org:v3"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
SSN_ROOT = "2.16.840.1.113883.4.1"
SNIFF_BYTES = 4096
_OID = re.compile(r"[0-2](?:\.\d+)+")
_PERSON_PARENTS = frozenset({"patient", "guardianPerson", "relatedPerson", "associatedPerson", "subject", "personalRelationship"})
_STAFF_PARENTS = frozenset({"assignedPerson", "informationRecipient", "maintainingPerson"})
_PERSON_CLASSES = frozenset({"PSN", "PRS"})  # entity classes of a person
_PLACE_CLASSES = frozenset({"PLC", "ORG"})  # of a place or an organization
_FACILITY_PARENTS = frozenset({"scopingEntity", "wholeOrganization", "place", "location", "healthCareFacility"})
_TIME_ELEMENTS = frozenset({"effectiveTime", "birthTime", "time", "low", "high", "center", "deceasedTime", "expectedUseTime"})
_FREE_TEXT = frozenset({"text", "originalText", "title", "desc", "signatureText"})
_KEPT_ADDRESS_PARTS = frozenset({"state", "country", "useablePeriod"})
_BLOCK = frozenset({"paragraph", "td", "th", "tr", "item", "caption", "list", "table", "thead", "tbody", "tfoot", "br", "text"})
_SCHEMES = {"tel": Entity.PHONE, "fax": Entity.FAX, "mailto": Entity.EMAIL, "http": Entity.URL, "https": Entity.URL}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _parser() -> etree.XMLParser:
    """No network, no DTD, no entity expansion, no huge trees: a document cannot make the
    appliance fetch anything or blow up in memory. Comments are left out as it parses."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=False, collect_ids=False, remove_comments=True)


def is_clinical_document(path: Path) -> bool:
    """Whether an .xml file is a CDA document (a ClinicalDocument in the HL7 v3 namespace)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return False
    return b"ClinicalDocument" in head and V3.encode() in head


def _local(element: etree._Element | None) -> str:
    if element is None:  # the parent of the root
        return ""
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


class CcdaFormat(WholeFileFormat):
    name = "ccda"

    def transform_file(self, unit: Unit, data: bytes, context: ReaderContext) -> UnitResult:
        try:
            tree = etree.ElementTree(etree.fromstring(data, _parser()))
        except etree.XMLSyntaxError as error:
            # the line only: libxml2's message can quote the document
            line = error.lineno or 0
            broken = Malformed(f"{unit.source}:{line}", MalformedReason.invalid_xml, f"not well-formed XML (line {line})")
            return UnitResult(b"", malformed=[broken])
        root = tree.getroot()
        if tree.docinfo.doctype:
            doctype = Malformed(unit.position, MalformedReason.doctype, "a document type declaration is not accepted in CDA")
            return UnitResult(b"", malformed=[doctype])
        if root.tag != f"{{{V3}}}ClinicalDocument":
            not_cda = Malformed(unit.position, MalformedReason.not_cda, "root is not a ClinicalDocument in the HL7 v3 namespace")
            return UnitResult(b"", malformed=[not_cda])
        walk = DocumentScrubber(context, unit.position)
        walk.run(root)
        out = etree.tostring(
            tree, encoding=tree.docinfo.encoding or "UTF-8", xml_declaration=True, standalone=tree.docinfo.standalone
        )
        if not out.endswith(b"\n"):
            out += b"\n"
        return UnitResult(out, [context.document(unit.source, unit.position, walk.identity or unit.position, data, out, walk.applied)])


@dataclass(slots=True)
class _Piece:
    element: etree._Element
    tail: bool  # the text after the element rather than inside it
    text: str
    separator: str


@dataclass(slots=True)
class DocumentScrubber:
    context: ReaderContext
    position: str
    patient: str = CORPUS_SCOPE
    identity: str = ""
    reference: date | None = None
    known: list[KnownPhi] = field(default_factory=list)
    applied: list[AppliedSpan] = field(default_factory=list)
    groups: dict[int, list[_Piece]] = field(default_factory=dict)

    def run(self, root: etree._Element) -> None:
        self._header_facts(root)
        self._walk(root, 0)
        for pieces in self.groups.values():
            self._scan(pieces)

    # ----- before any change ------------------------------------------------------------
    def _header_facts(self, root: etree._Element) -> None:
        """The patient's scope (by MRN, as HL7 v2 scopes it) and own identity as known PHI."""
        for child in root:
            local = _local(child)
            if local == "id" and not self.identity:
                self.identity = f"ClinicalDocument/{child.get('root', '')}^{child.get('extension', '')}"
            elif local == "effectiveTime" and self.reference is None:
                match = parse_ts(child.get("value", ""))
                if match is not None:
                    self.reference = date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
        role = root.find(f"{{{V3}}}recordTarget/{{{V3}}}patientRole")
        if role is None:
            self.patient = f"cda:{self.position}"
            return
        ids = [(i.get("root", ""), i.get("extension", "")) for i in role.findall(f"{{{V3}}}id")]
        mrn = next((ext for oid, ext in ids if ext and oid != SSN_ROOT), "")
        if mrn:
            self.patient, known = patient_scope(self.context, mrn)
            self.known.extend(known)
        else:
            self.patient = f"cda:{self.position}"
        for oid, ext in ids:
            self._know(ext, Entity.SSN if oid == SSN_ROOT else Entity.MRN)
        for element in role.iter():
            local = _local(element)
            if local in ("given", "family") or (local == "name" and len(element) == 0):
                self._know(element.text or "", Entity.PATIENT)
            elif local in ("streetAddressLine", "city", "postalCode", "county"):
                self._know(element.text or "", Entity.LOCATION)
            elif local == "telecom":
                self._know(element.get("value", "").partition(":")[2], Entity.PHONE)
            elif local == "birthTime":
                self._know(element.get("value", ""), Entity.DATE)
        for name in root.iter(f"{{{V3}}}name"):  # everyone the document names, wherever they recur
            parent = _local(name.getparent())
            if parent in _PERSON_PARENTS or parent in _STAFF_PARENTS or name.find(f"{{{V3}}}family") is not None:
                entity = Entity.PATIENT if parent in _PERSON_PARENTS else Entity.CLINICIAN
                for part in name.iter(f"{{{V3}}}given", f"{{{V3}}}family"):
                    self._know(part.text or "", entity)
            elif parent.endswith("Organization") or parent in _FACILITY_PARENTS:
                self._know(name.text or "", Entity.HOSPITAL)

    def _know(self, value: str, entity: Entity) -> None:
        value = value.strip()
        if len(value) > 1:
            self.known.append(KnownPhi(value, entity.value))

    # ----- the walk -----------------------------------------------------------------------
    def _walk(self, element: etree._Element, group: int) -> None:
        for child in element:
            local = _local(child)
            if not local:
                continue  # processing instructions
            if local == "section":
                self._walk(child, id(child))
            elif local in _FREE_TEXT:
                self._collect(child, group)
            elif local == "name":
                self._name(child)
            elif local == "addr":
                self._address(child)
            elif local == "telecom":
                self._telecom(child)
            elif local in ("id", "setId"):
                self._id(child)
            elif local == "value" and child.get(XSI_TYPE, "").split(":")[-1] in ("ST", "ED", "SC"):
                self._typed_text(child, group)
            elif local == "value" and child.get(XSI_TYPE, "").split(":")[-1] == "TS":
                self._time(child)
            elif local == "value" and child.get(XSI_TYPE, "").split(":")[-1] == "II":
                self._id(child)
            elif local == "lotNumberText":
                self._replace_text(child, Entity.DEVICE)
            else:
                if local in _TIME_ELEMENTS:
                    self._time(child)
                self._walk(child, group)

    def _name(self, element: etree._Element) -> None:
        parent_element = element.getparent()
        assert parent_element is not None  # the walk reaches names below the document element only
        parent = _local(parent_element)
        structured = any(_local(part) in ("given", "family") for part in element)
        if parent in _STAFF_PARENTS:
            entity = Entity.CLINICIAN
        elif structured or parent in _PERSON_PARENTS or parent_element.get("classCode", "") in _PERSON_CLASSES:
            entity = Entity.PATIENT  # a PN (given/family) is a person wherever it sits, a playingEntity too
        elif parent.endswith("Organization") or parent in _FACILITY_PARENTS or parent_element.get("classCode", "") in _PLACE_CLASSES:
            self._facility_name(element)
            return
        else:
            return  # a drug, an allergen, a device model: not PHI
        if element.text and element.text.strip():
            self._replace_text(element, entity)
        for part in element:
            local = _local(part)
            if local in ("given", "family", "delimiter"):
                self._replace_text(part, entity)
            elif local == "validTime":
                self._walk(part, 0)
            if part.tail and part.tail.strip():
                self._replace_tail(part, entity)

    def _address(self, element: etree._Element) -> None:
        if element.text and element.text.strip():
            self._replace_text(element, Entity.LOCATION)
        for part in element:
            local = _local(part)
            if local == "useablePeriod":
                self._time(part)
                self._walk(part, 0)
            elif local == "postalCode":
                self._postal_code(part)
            elif local and local not in _KEPT_ADDRESS_PARTS:
                self._replace_text(part, Entity.LOCATION)
            if part.tail and part.tail.strip():
                self._replace_tail(part, Entity.LOCATION)

    def _telecom(self, element: etree._Element) -> None:
        value = element.get("value")
        if value:
            scheme, colon, rest = value.partition(":")
            entity = _SCHEMES.get(scheme.lower(), Entity.PHONE) if colon else Entity.PHONE
            target = rest if colon else value
            if target.strip():
                new, operator = self.context.anonymizer.replace(target, entity.value, self.patient)
                element.set("value", f"{scheme}{colon}{new}" if colon else new)
                self.applied.append(AppliedSpan(0, len(target), entity.value, operator, "telecom@value"))
        for part in element:
            self._time(part)
            self._walk(part, 0)

    def _id(self, element: etree._Element) -> None:
        """``extension`` gets a corpus-wide keyed fake (the same MRN in an HL7 v2 message
        gets the same one); an OID ``root`` is kept, a UUID root (an instance id) is replaced."""
        surrogates = self.context.anonymizer.surrogates
        root = element.get("root", "")
        extension = element.get("extension")
        if extension:
            element.set("extension", surrogates.identifier(extension, CORPUS_SCOPE))
            entity = Entity.SSN if root == SSN_ROOT else Entity.ID
            self.applied.append(AppliedSpan(0, len(extension), entity.value, "pseudonymize", "id@extension"))
        if root and not _OID.fullmatch(root):
            element.set("root", surrogates.resource_id(root) if _UUID.fullmatch(root) else surrogates.identifier(root, CORPUS_SCOPE))
            self.applied.append(AppliedSpan(0, len(root), Entity.ID.value, "pseudonymize", "id@root"))
        authority = element.get("assigningAuthorityName")
        if authority:
            new, operator = facility_surrogate(self.context, authority, self.patient)
            element.set("assigningAuthorityName", new)
            self.applied.append(AppliedSpan(0, len(authority), Entity.HOSPITAL.value, operator, "id@assigningAuthorityName"))

    def _time(self, element: etree._Element) -> None:
        value = element.get("value")
        if not value:
            return
        anonymizer = self.context.anonymizer
        if _local(element) == "birthTime" and self._cap_age(element, value):
            return
        shifted = shift_ts(value, anonymizer.date_offset(self.patient))
        operator = "shift"
        if shifted is None:
            shifted = anonymizer.structured_date(value, self.patient)
            if shifted == value:
                del element.attrib["value"]
                element.set("nullFlavor", "MSK")  # masked: a value that cannot be shifted is not kept
                self.applied.append(AppliedSpan(0, len(value), Entity.DATE.value, "drop", "@value"))
                return
        else:
            anonymizer.surrogates.register(value, shifted)
        element.set("value", shifted)
        self.applied.append(AppliedSpan(0, len(value), Entity.DATE.value, operator, f"{_local(element)}@value"))

    def _cap_age(self, element: etree._Element, value: str) -> bool:
        """Safe Harbor: ages over 89 are one class; such a birth time becomes the year of a
        90-year-old at the document's date."""
        match = parse_ts(value)
        if match is None:
            return False
        reference = self.reference or date.today()
        born = date(int(match["y"]), int(match["m"] or 1), int(match["d"] or 1))
        if reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day)) <= 89:
            return False
        element.set("value", self.context.anonymizer.surrogates.register(value, f"{reference.year - 90:04d}"))
        self.applied.append(AppliedSpan(0, len(value), Entity.AGE_OVER_89.value, "age_cap", "birthTime@value"))
        return True

    # ----- text ---------------------------------------------------------------------------
    def _replace_text(self, element: etree._Element, entity: Entity) -> None:
        value = element.text or ""
        if value.strip():
            element.text = self._replacement(value, entity, _local(element))

    def _replace_tail(self, element: etree._Element, entity: Entity) -> None:
        element.tail = self._replacement(element.tail or "", entity, "tail")

    def _replacement(self, value: str, entity: Entity, path: str) -> str:
        stripped = value.strip()
        if entity in (Entity.PATIENT, Entity.CLINICIAN):
            new, operator = person_surrogate(self.context, stripped, entity.value, self.patient)
        else:
            new, operator = self.context.anonymizer.replace(stripped, entity.value, self.patient)
        self.applied.append(AppliedSpan(0, len(stripped), entity.value, operator, path))
        return value.replace(stripped, new, 1)

    def _facility_name(self, element: etree._Element) -> None:
        value = element.text or ""
        if value.strip():
            new, operator = facility_surrogate(self.context, value.strip(), self.patient)
            element.text = value.replace(value.strip(), new, 1)
            self.applied.append(AppliedSpan(0, len(value.strip()), Entity.HOSPITAL.value, operator, "name"))

    def _postal_code(self, element: etree._Element) -> None:
        value = (element.text or "").strip()
        anonymizer = self.context.anonymizer
        if not value:
            return
        if anonymizer.redacting:
            self._replace_text(element, Entity.LOCATION)
            return
        scope = anonymizer.scope(Entity.LOCATION.value, self.patient)
        element.text = (element.text or "").replace(value, anonymizer.surrogates.identifier(value, scope), 1)
        self.applied.append(AppliedSpan(0, len(value), Entity.LOCATION.value, "surrogate", "postalCode"))

    def _typed_text(self, element: etree._Element, group: int) -> None:
        if element.get("representation", "").upper() == "B64":
            # encoded content cannot be scanned, so it cannot be kept
            for child in list(element):
                element.remove(child)
            element.text = ""
            element.set("nullFlavor", "MSK")
            self.applied.append(AppliedSpan(0, 0, "ATTACHMENT", "drop", "value"))
            return
        self._collect(element, group)

    def _collect(self, element: etree._Element, group: int) -> None:
        """Every text node inside a free-text element, in document order, with a line break
        where the narrative's layout has one (a cell, a paragraph, a list item)."""
        pieces = self.groups.setdefault(group, [])
        first = True

        def add(node: etree._Element, tail: bool, text: str | None, separator: str) -> None:
            nonlocal first
            if text is None:
                return
            pieces.append(_Piece(node, tail, text, "\n\n" if first else separator))
            first = False

        add(element, False, element.text, "\n")
        for node in element.iterdescendants():
            local = _local(node)
            href = node.get("href", "")
            if local == "linkHtml" and href and not href.startswith("#"):
                new, operator = self.context.anonymizer.replace(href, Entity.URL.value, self.patient)
                node.set("href", new)
                self.applied.append(AppliedSpan(0, len(href), Entity.URL.value, operator, "linkHtml@href"))
            block = "\n" if local in _BLOCK else ""
            if local:
                add(node, False, node.text, block)
            add(node, True, node.tail, block)

    def _scan(self, pieces: list[_Piece]) -> None:
        if not pieces:
            return
        texts = [piece.text for piece in pieces]
        separators = [piece.separator for piece in pieces[1:]]
        scrubbed, applied = scrub_pieces(self.context, texts, separators, self.patient, self.known, "narrative")
        for piece, new in zip(pieces, scrubbed, strict=True):
            if new == piece.text:
                continue
            if piece.tail:
                piece.element.tail = new
            else:
                piece.element.text = new
        self.applied.extend(applied)


def narrative_text(data: bytes) -> tuple[str, str] | None:
    """(patient id, narrative) of a de-identified CDA document, for training text: each
    section as a "# title" heading and its narrative block with the layout's line breaks;
    None when the bytes are not a CDA document."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        return None
    if root.tag != f"{{{V3}}}ClinicalDocument":
        return None
    ids = root.xpath("v3:recordTarget/v3:patientRole/v3:id[@extension]", namespaces={"v3": V3})
    patient = next((i.get("extension", "") for i in ids if i.get("root") != SSN_ROOT), "")
    parts = []
    for section in root.iter(f"{{{V3}}}section"):
        title, text = section.find(f"{{{V3}}}title"), section.find(f"{{{V3}}}text")
        body = _flat(text).strip() if text is not None else ""
        if body:
            heading = " ".join(_flat(title).split()) if title is not None else ""
            parts.append(f"# {heading}\n{body}" if heading else body)
    return patient, "\n\n".join(parts)


def _flat(element: etree._Element) -> str:
    """An element's text with a line break at each block (paragraph, row, item) and the
    source's indentation folded away."""
    def fold(text: str | None) -> str:
        return re.sub(r"\s+", " ", text or "")

    chunks = [fold(element.text)]
    for node in element.iterdescendants():
        local = _local(node)
        if local in ("td", "th"):
            chunks.append(" | ")
        elif local in _BLOCK:
            chunks.append("\n")
        chunks.append(fold(node.text) if local else "")
        chunks.append(("\n" if local in ("paragraph", "tr", "item", "br", "list", "table", "caption") else "") + fold(node.tail))
    lines = (line.strip(" |") for line in "".join(chunks).splitlines())
    return "\n".join(" ".join(line.split()) for line in lines if line.strip(" |"))
