"""Which HL7 v2 fields carry identity, by segment and position, and what kind of value each is.

HL7 v2 says nothing about PHI, so the rules live in a table: a field's data type (a person's
name, a clinician, an address, a phone, an identifier, a timestamp, a facility...) decides how
each of its components is replaced. Fields not listed in a listed segment are codes, flags
and values that identify nobody (PID-8 sex, OBX-3 the test, PV1-2 the patient class) and pass
untouched; segments not listed at all are read generically (timestamps shifted, words scanned).
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """How one field's components are de-identified (named after the HL7 data types)."""

    PERSON = "XPN"  # patient, relative or other non-staff person's name
    STAFF = "XCN"  # clinician: id^family^given^middle...
    STAFF_NDL = "NDL"  # OBR-32..35: id&family&given in the first component
    ADDRESS = "XAD"
    PHONE = "XTN"
    PATIENT_ID = "CX"  # medical record numbers and other patient identifiers
    ACCOUNT = "CX-ACCOUNT"
    VISIT = "CX-VISIT"
    SSN = "SSN"
    LICENSE = "DLN"
    ENTITY_ID = "EI"  # order, document and message ids
    TIMESTAMP = "TS"
    FACILITY = "HD"  # namespace^universal id^type: the namespace names a facility, the id may be an IP
    ORGANIZATION = "XON"
    LOCATION = "PL"
    PLACE = "ST-PLACE"  # a free-text place (birthplace)
    TEXT = "TEXT"  # free text, scanned with the rest of the message's text
    OBSERVATION = "OBX-5"  # typed by OBX-2


PID_RULES = {
    2: Kind.PATIENT_ID, 3: Kind.PATIENT_ID, 4: Kind.PATIENT_ID, 5: Kind.PERSON, 6: Kind.PERSON, 7: Kind.TIMESTAMP,
    9: Kind.PERSON, 11: Kind.ADDRESS, 12: Kind.PLACE, 13: Kind.PHONE, 14: Kind.PHONE, 18: Kind.ACCOUNT,
    19: Kind.SSN, 20: Kind.LICENSE, 21: Kind.PATIENT_ID, 23: Kind.PLACE, 29: Kind.TIMESTAMP, 33: Kind.TIMESTAMP,
    34: Kind.FACILITY,
}
_HEADER = {4: Kind.FACILITY, 6: Kind.FACILITY, 7: Kind.TIMESTAMP, 10: Kind.ENTITY_ID}

SEGMENT_RULES: dict[str, dict[int, Kind]] = {
    "MSH": {**_HEADER, 22: Kind.ORGANIZATION, 23: Kind.ORGANIZATION, 24: Kind.FACILITY, 25: Kind.FACILITY},
    "FHS": {**_HEADER, 9: Kind.ENTITY_ID, 11: Kind.ENTITY_ID, 12: Kind.ENTITY_ID},
    "BHS": {**_HEADER, 9: Kind.ENTITY_ID, 11: Kind.ENTITY_ID, 12: Kind.ENTITY_ID},
    "FTS": {2: Kind.TEXT},
    "BTS": {2: Kind.TEXT},
    "EVN": {2: Kind.TIMESTAMP, 3: Kind.TIMESTAMP, 5: Kind.STAFF, 6: Kind.TIMESTAMP, 7: Kind.FACILITY},
    "PID": PID_RULES,
    "PD1": {3: Kind.ORGANIZATION, 4: Kind.STAFF},
    "MRG": {1: Kind.PATIENT_ID, 2: Kind.PATIENT_ID, 3: Kind.ACCOUNT, 4: Kind.PATIENT_ID, 5: Kind.VISIT, 6: Kind.VISIT,
            7: Kind.PERSON},
    "NK1": {2: Kind.PERSON, 4: Kind.ADDRESS, 5: Kind.PHONE, 6: Kind.PHONE, 8: Kind.TIMESTAMP, 9: Kind.TIMESTAMP,
            12: Kind.PATIENT_ID, 13: Kind.ORGANIZATION, 16: Kind.TIMESTAMP, 30: Kind.PERSON, 31: Kind.PHONE,
            32: Kind.ADDRESS, 33: Kind.PATIENT_ID, 37: Kind.SSN, 38: Kind.PLACE, 40: Kind.PHONE, 41: Kind.ADDRESS},
    "PV1": {3: Kind.LOCATION, 6: Kind.LOCATION, 7: Kind.STAFF, 8: Kind.STAFF, 9: Kind.STAFF, 11: Kind.LOCATION,
            17: Kind.STAFF, 19: Kind.VISIT, 37: Kind.LOCATION, 39: Kind.FACILITY, 42: Kind.LOCATION, 43: Kind.LOCATION,
            44: Kind.TIMESTAMP, 45: Kind.TIMESTAMP, 50: Kind.VISIT, 52: Kind.STAFF},
    "PV2": {1: Kind.LOCATION, 8: Kind.TIMESTAMP, 9: Kind.TIMESTAMP, 12: Kind.TEXT, 13: Kind.STAFF, 23: Kind.ORGANIZATION,
            26: Kind.TIMESTAMP, 28: Kind.TIMESTAMP, 29: Kind.TIMESTAMP, 33: Kind.TIMESTAMP},
    "ORC": {2: Kind.ENTITY_ID, 3: Kind.ENTITY_ID, 4: Kind.ENTITY_ID, 8: Kind.ENTITY_ID, 9: Kind.TIMESTAMP,
            10: Kind.STAFF, 11: Kind.STAFF, 12: Kind.STAFF, 13: Kind.LOCATION, 14: Kind.PHONE, 15: Kind.TIMESTAMP,
            19: Kind.STAFF, 21: Kind.ORGANIZATION, 22: Kind.ADDRESS, 23: Kind.PHONE, 24: Kind.ADDRESS},
    "OBR": {2: Kind.ENTITY_ID, 3: Kind.ENTITY_ID, 6: Kind.TIMESTAMP, 7: Kind.TIMESTAMP, 8: Kind.TIMESTAMP,
            10: Kind.STAFF, 13: Kind.TEXT, 14: Kind.TIMESTAMP, 16: Kind.STAFF, 17: Kind.PHONE, 18: Kind.ENTITY_ID,
            19: Kind.ENTITY_ID, 20: Kind.ENTITY_ID, 21: Kind.ENTITY_ID, 22: Kind.TIMESTAMP, 28: Kind.STAFF,
            29: Kind.ENTITY_ID, 31: Kind.TEXT, 32: Kind.STAFF_NDL, 33: Kind.STAFF_NDL, 34: Kind.STAFF_NDL,
            35: Kind.STAFF_NDL, 36: Kind.TIMESTAMP, 53: Kind.ENTITY_ID},
    "OBX": {5: Kind.OBSERVATION, 12: Kind.TIMESTAMP, 14: Kind.TIMESTAMP, 15: Kind.FACILITY, 16: Kind.STAFF,
            18: Kind.ENTITY_ID, 19: Kind.TIMESTAMP, 23: Kind.ORGANIZATION, 24: Kind.ADDRESS, 25: Kind.STAFF},
    "NTE": {3: Kind.TEXT, 5: Kind.STAFF, 6: Kind.TIMESTAMP, 7: Kind.TIMESTAMP},
    "TXA": {4: Kind.TIMESTAMP, 5: Kind.STAFF, 6: Kind.TIMESTAMP, 7: Kind.TIMESTAMP, 8: Kind.TIMESTAMP, 9: Kind.STAFF,
            10: Kind.STAFF, 11: Kind.STAFF, 12: Kind.ENTITY_ID, 13: Kind.ENTITY_ID, 14: Kind.ENTITY_ID,
            15: Kind.ENTITY_ID, 16: Kind.ENTITY_ID, 22: Kind.STAFF, 23: Kind.STAFF},
    "DG1": {4: Kind.TEXT, 5: Kind.TIMESTAMP, 16: Kind.STAFF, 19: Kind.TIMESTAMP},
    "PR1": {2: Kind.TEXT, 4: Kind.TEXT, 5: Kind.TIMESTAMP, 8: Kind.STAFF, 11: Kind.STAFF, 12: Kind.STAFF},
    "AL1": {5: Kind.TEXT, 6: Kind.TIMESTAMP},
    "ROL": {4: Kind.STAFF, 5: Kind.TIMESTAMP, 6: Kind.TIMESTAMP, 11: Kind.ADDRESS, 12: Kind.PHONE, 13: Kind.LOCATION},
    "GT1": {2: Kind.PATIENT_ID, 3: Kind.PERSON, 4: Kind.PERSON, 5: Kind.ADDRESS, 6: Kind.PHONE, 7: Kind.PHONE,
            8: Kind.TIMESTAMP, 12: Kind.SSN, 13: Kind.TIMESTAMP, 14: Kind.TIMESTAMP, 16: Kind.PERSON, 17: Kind.ADDRESS,
            18: Kind.PHONE, 19: Kind.PATIENT_ID, 21: Kind.ORGANIZATION, 45: Kind.PERSON, 46: Kind.PHONE,
            47: Kind.ADDRESS, 51: Kind.ORGANIZATION},
    "IN1": {2: Kind.ENTITY_ID, 3: Kind.PATIENT_ID, 4: Kind.ORGANIZATION, 5: Kind.ADDRESS, 6: Kind.PERSON,
            7: Kind.PHONE, 8: Kind.ACCOUNT, 9: Kind.ORGANIZATION, 10: Kind.PATIENT_ID, 11: Kind.ORGANIZATION,
            12: Kind.TIMESTAMP, 13: Kind.TIMESTAMP, 16: Kind.PERSON, 18: Kind.TIMESTAMP, 19: Kind.ADDRESS,
            29: Kind.TIMESTAMP, 30: Kind.STAFF, 36: Kind.ACCOUNT, 44: Kind.ADDRESS, 49: Kind.PATIENT_ID},
    "SPM": {2: Kind.ENTITY_ID, 3: Kind.ENTITY_ID, 17: Kind.TIMESTAMP, 18: Kind.TIMESTAMP},
}

# OBX-2 value types whose OBX-5 is prose.
TEXT_TYPES = frozenset({"TX", "FT", "ST", "TEXT"})
# Coded values: the text components (2, 5 and CWE-9 original text) are scanned, codes kept.
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
CODED_TEXT_COMPONENTS = (2, 5, 9)
DATE_TYPES = frozenset({"TS", "DT", "DTM", "DR"})
# OBX-5 of these types is identity of its own kind.
TYPED_IDENTITY: dict[str, Kind] = {
    "XPN": Kind.PERSON, "PN": Kind.PERSON, "XCN": Kind.STAFF, "CN": Kind.STAFF, "XAD": Kind.ADDRESS,
    "AD": Kind.ADDRESS, "XTN": Kind.PHONE, "TN": Kind.PHONE, "CX": Kind.PATIENT_ID, "EI": Kind.ENTITY_ID,
    "XON": Kind.ORGANIZATION,
}
# Encapsulated or referenced data (a PDF in base64, a pointer to one) cannot be scanned, so it is not kept.
OPAQUE_TYPES = frozenset({"ED", "RP"})
# Numbers and codes that identify nobody.
PLAIN_TYPES = frozenset({"NM", "SN", "ID", "IS", "CQ", "MO", "NA", "MA", "TM"})
