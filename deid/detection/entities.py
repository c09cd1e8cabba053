"""The fixed vocabulary of PHI entity types every part of the appliance uses.

Detection, anonymization, the audit ledger and the dataset gate all agree on these names, so
they live in one place. Each type maps to one of HIPAA Safe Harbor's 18 identifiers
(45 CFR 164.514(b)(2)(i), letters A-R) or to the two extra classes the appliance also removes:
clinician names and hospital names.
"""

from __future__ import annotations

from enum import StrEnum


class Entity(StrEnum):
    """PHI entity types; the value is what appears in ``DetectedSpan.entity_type``."""

    PATIENT = "PATIENT"  # names of the patient, relatives, friends and other non-staff persons
    CLINICIAN = "CLINICIAN"  # names of doctors, nurses and other staff
    HOSPITAL = "HOSPITAL"  # hospitals, clinics, nursing homes, named wards
    LOCATION = "LOCATION"  # street addresses, cities, counties, zip codes (geography below state)
    DATE = "DATE"  # every date element except the year alone
    AGE_OVER_89 = "AGE_OVER_89"
    PHONE = "PHONE"  # telephone and pager numbers
    FAX = "FAX"
    EMAIL = "EMAIL"
    SSN = "SSN"
    MRN = "MRN"
    HEALTH_PLAN = "HEALTH_PLAN"
    ACCOUNT = "ACCOUNT"
    LICENSE = "LICENSE"  # certificate and licence numbers
    VEHICLE = "VEHICLE"
    DEVICE = "DEVICE"
    URL = "URL"
    IP_ADDRESS = "IP_ADDRESS"
    ID = "ID"  # any other unique identifying number, characteristic or code


HIPAA_IDENTIFIER: dict[Entity, str] = {
    Entity.PATIENT: "A names",
    Entity.CLINICIAN: "A names (staff; removed by appliance policy)",
    Entity.HOSPITAL: "B geographic subdivisions (facility names; removed by appliance policy)",
    Entity.LOCATION: "B geographic subdivisions smaller than a state",
    Entity.DATE: "C dates (except year) and ages over 89",
    Entity.AGE_OVER_89: "C dates (except year) and ages over 89",
    Entity.PHONE: "D telephone numbers",
    Entity.FAX: "E fax numbers",
    Entity.EMAIL: "F electronic mail addresses",
    Entity.SSN: "G social security numbers",
    Entity.MRN: "H medical record numbers",
    Entity.HEALTH_PLAN: "I health plan beneficiary numbers",
    Entity.ACCOUNT: "J account numbers",
    Entity.LICENSE: "K certificate/license numbers",
    Entity.VEHICLE: "L vehicle identifiers and serial numbers",
    Entity.DEVICE: "M device identifiers and serial numbers",
    Entity.URL: "N web URLs",
    Entity.IP_ADDRESS: "O IP addresses",
    Entity.ID: "R any other unique identifying number, characteristic, or code",
}

ALL_ENTITIES: tuple[str, ...] = tuple(entity.value for entity in Entity)
NAME_ENTITIES: frozenset[str] = frozenset({Entity.PATIENT.value, Entity.CLINICIAN.value})


# What redact mode writes in place of each type: the detector must never flag its own tags.
REDACTION_TAGS: dict[str, str] = {
    Entity.PATIENT.value: "[NAME]",
    Entity.CLINICIAN.value: "[NAME]",
    Entity.HOSPITAL.value: "[HOSPITAL]",
    Entity.LOCATION.value: "[LOCATION]",
    Entity.DATE.value: "[DATE]",
    Entity.AGE_OVER_89.value: "[AGE]",
    Entity.PHONE.value: "[PHONE]",
    Entity.FAX.value: "[FAX]",
    Entity.EMAIL.value: "[EMAIL]",
    Entity.SSN.value: "[SSN]",
    Entity.MRN.value: "[MRN]",
    Entity.HEALTH_PLAN.value: "[HEALTH_PLAN]",
    Entity.ACCOUNT.value: "[ACCOUNT]",
    Entity.LICENSE.value: "[LICENSE]",
    Entity.VEHICLE.value: "[VEHICLE]",
    Entity.DEVICE.value: "[DEVICE]",
    Entity.URL.value: "[URL]",
    Entity.IP_ADDRESS.value: "[IP]",
    Entity.ID.value: "[ID]",
}
DEFAULT_TAG = "[PHI]"
TAG_WORDS = frozenset(tag.strip("[]") for tag in [*REDACTION_TAGS.values(), DEFAULT_TAG])
