"""C-CDA: a hardened parser, the header by data type, narrative scanned, the XML kept as written."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from deid.errors import UnsupportedFormatError
from deid.readers.base import ReaderContext, UnitResult
from deid.readers.ccda import CcdaFormat
from deid.readers.formats import format_for

V3 = {"v3": "urn:hl7-org:v3"}
DOCUMENT = """<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="CDA.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:sdtc="urn:hl7-org:sdtc"
    xsi:schemaLocation="urn:hl7-org:v3 CDA.xsd">
  <!-- exported for Qortimer Zyxwquist -->
  <id root="2.16.840.1.113883.19.5.99999.1" extension="TT-4471"/>
  <code code="18842-5" codeSystem="2.16.840.1.113883.6.1" displayName="Discharge summary"/>
  <title>Qorvath Memorial: Discharge Summary</title>
  <effectiveTime value="202103091904-0500"/>
  <setId root="db734647-fc99-424c-a864-7e3cda82e703"/>
  <recordTarget><patientRole>
    <id root="2.16.840.1.113883.19.5.99999.2" extension="MR-0048291"/>
    <id root="2.16.840.1.113883.4.1" extension="123-45-6789"/>
    <addr use="HP"><streetAddressLine>77 Canarywood Lane</streetAddressLine><city>Olathe</city><state>KS</state>
      <postalCode>66061</postalCode><country>US</country></addr>
    <telecom use="HP" value="tel:+1(913)555-0147"/>
    <telecom value="mailto:qz@canary.example"/>
    <patient>
      <name use="L"><prefix>Mr.</prefix><given>Qortimer</given><family>Zyxwquist</family></name>
      <administrativeGenderCode code="M" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19290521"/>
      <guardian><guardianPerson><name><given>Ilsa</given><family>Vrondhaven</family></name></guardianPerson></guardian>
    </patient>
    <providerOrganization><name>Qorvath Memorial</name></providerOrganization>
  </patientRole></recordTarget>
  <author><time value="20210309"/><assignedAuthor><id root="2.16.840.1.113883.4.6" extension="9999951293"/>
    <assignedPerson><name><given>Haldane</given><family>Brightwater</family><suffix>MD</suffix></name></assignedPerson>
  </assignedAuthor></author>
  <component><structuredBody><component><section>
    <title>Hospital Course</title>
    <text>
      <paragraph>Mr. <content styleCode="Bold">Zyxwquist</content> was admitted on 03/02/2021 by Dr.
        Brightwater.</paragraph>
      <table><tbody><tr><td>Contact</td><td>Ilsa Vrondhaven, (913)555-0148</td></tr></tbody></table>
    </text>
    <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
      <effectiveTime xsi:type="IVL_TS"><low value="20210302"/><high value="2021030912"/></effectiveTime>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="197361" codeSystem="2.16.840.1.113883.6.88" displayName="Amlodipine 5 MG Oral Tablet">
          <originalText>Amlodipine per Dr. Brightwater</originalText></code>
        <name>Amlodipine</name>
      </manufacturedMaterial></manufacturedProduct></consumable>
    </substanceAdministration></entry>
    <entry><observation classCode="OBS" moodCode="EVN">
      <value xsi:type="ED" mediaType="application/pdf" representation="B64">JVBERi0xLjQgWnl4d3F1aXN0</value>
    </observation></entry>
  </section></component></structuredBody></component>
</ClinicalDocument>
"""
CANARIES = ("Zyxwquist", "Qortimer", "Vrondhaven", "Ilsa", "Canarywood", "Olathe", "66061", "MR-0048291", "123-45-6789",
            "555-0147", "555-0148", "qz@canary", "Brightwater", "Haldane", "Qorvath", "TT-4471", "9999951293",
            "db734647", "19290521", "03/02/2021", "20210302", "JVBERi0")


def transform(tmp_path: Path, text: str | bytes, context: ReaderContext, name: str = "doc.xml") -> UnitResult:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    reader = format_for(path)
    assert isinstance(reader, CcdaFormat)
    (unit, _, _), = list(reader.units(path, path.name, 0, 0))
    return reader.transform(unit, context)


def test_document_identity_replaced_and_the_xml_kept(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    result = transform(tmp_path, DOCUMENT, make_context())
    assert not result.malformed
    out = result.output.decode()
    for canary in CANARIES:
        assert canary not in out, canary
    assert out.startswith("<?xml") and '<?xml-stylesheet type="text/xsl" href="CDA.xsl"?>' in out and "<!--" not in out
    root = etree.fromstring(result.output)
    assert root.nsmap == {None: "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance", "sdtc": "urn:hl7-org:sdtc"}
    assert root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation") == "urn:hl7-org:v3 CDA.xsd"

    def one(query: str) -> etree._Element:
        (element,) = root.xpath(query, namespaces=V3)
        return element

    assert one("v3:id").get("root") == "2.16.840.1.113883.19.5.99999.1"  # an OID names the assigning authority
    assert len(one("v3:setId").get("root")) == 36  # a UUID root is itself the id: replaced, still a UUID
    ssn = one("//v3:patientRole/v3:id[@root='2.16.840.1.113883.4.1']").get("extension")
    assert len(ssn) == 11 and ssn[3] == "-" and ssn[6] == "-"
    assert one("//v3:addr/v3:state").text == "KS" and one("//v3:addr/v3:country").text == "US"
    assert len(one("//v3:addr/v3:postalCode").text) == 5
    assert re.fullmatch(r"tel:\+\d\(\d{3}\)\d{3}-\d{4}", one("//v3:telecom[@use='HP']").get("value"))
    assert one("//v3:telecom[not(@use)]").get("value").startswith("mailto:")
    assert one("//v3:patient/v3:name/v3:prefix").text == "Mr." and one("//v3:assignedPerson//v3:suffix").text == "MD"
    assert one("//v3:patient/v3:birthTime").get("value") == "1931"  # 91 at the document's date: the year of a 90-year-old
    effective = one("v3:effectiveTime").get("value")
    assert len(effective) == len("202103091904-0500") and effective.endswith("1904-0500") and effective != "202103091904-0500"
    assert len(one("//v3:high").get("value")) == 10
    assert one("//v3:manufacturedMaterial/v3:name").text == "Amlodipine"  # a drug is not a person
    assert one("//v3:manufacturedMaterial/v3:code").get("displayName") == "Amlodipine 5 MG Oral Tablet"
    assert one("//v3:observation/v3:value").get("nullFlavor") == "MSK"
    bold = one("//v3:content")
    assert bold.get("styleCode") == "Bold" and bold.text == one("//v3:patient/v3:name/v3:family").text
    assert one("//v3:section/v3:title").text == "Hospital Course"
    assert {span.entity_type for span in result.documents[0].applied} >= {"PATIENT", "CLINICIAN", "HOSPITAL", "LOCATION", "ID", "DATE"}


def test_the_parser_refuses_entities_and_document_types(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("Zyxwquist")
    external = (
        f'<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&x;</title></ClinicalDocument>\n'
    )
    result = transform(tmp_path, external, make_context())
    assert result.output == b"" and [m.reason for m in result.malformed] == ["doctype"]
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE ClinicalDocument [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&c;</title></ClinicalDocument>\n'
    )
    result = transform(tmp_path, laughs, make_context(), "laughs.xml")
    assert result.output == b"" and result.malformed


def test_broken_xml_is_reported_by_line_without_its_text(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    broken = DOCUMENT.replace("<city>Olathe</city>", "<city>Olathe</town>")
    result = transform(tmp_path, broken, make_context())
    (problem,) = result.malformed
    line = DOCUMENT.splitlines().index(next(row for row in DOCUMENT.splitlines() if "<city>" in row)) + 1
    assert (problem.position, problem.reason) == (f"doc.xml:{line}", "invalid_xml") and "Olathe" not in problem.detail


def test_only_cda_xml_is_taken(tmp_path: Path) -> None:
    other = tmp_path / "other.xml"
    other.write_text('<?xml version="1.0"?><catalog xmlns="urn:example"/>')
    with pytest.raises(UnsupportedFormatError, match="unsupported format"):
        format_for(other)
