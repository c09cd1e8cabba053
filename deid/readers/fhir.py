"""FHIR R4 files: bulk-export NDJSON (one resource per line) and JSON Bundles or resources."""

from __future__ import annotations

import json
from typing import Any

from deid.malformed import Malformed, MalformedReason
from deid.readers.base import ReaderContext, Unit, UnitResult
from deid.readers.fhir_resource import ResourceScrubber
from deid.readers.jsonl import JsonLinesFormat, decode_object
from deid.readers.text import WholeFileFormat


def _identity(resource: dict[str, Any], fallback: str) -> str:
    if "id" in resource:
        return f"{resource.get('resourceType')}/{resource['id']}"
    return fallback


class FhirNdjsonFormat(JsonLinesFormat):
    name = "fhir-ndjson"

    def transform_object(self, resource: dict[str, Any], raw: bytes, unit: Unit, context: ReaderContext) -> UnitResult:
        if not isinstance(resource.get("resourceType"), str):
            return UnitResult(b"", malformed=[Malformed(unit.position, MalformedReason.no_resource_type, "no resourceType")])
        scrubbed, applied = ResourceScrubber(context).scrub(resource)
        out = (json.dumps(scrubbed, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        document = context.document(unit.source, unit.position, _identity(resource, unit.position), raw, out, applied)
        return UnitResult(out, [document])


class FhirJsonFormat(WholeFileFormat):
    """A Bundle (each entry's resource one document) or a single resource, as one JSON file."""

    name = "fhir-json"

    def transform_file(self, unit: Unit, data: bytes, context: ReaderContext) -> UnitResult:
        document = decode_object(data, unit.position)
        if isinstance(document, Malformed):
            return UnitResult(b"", malformed=[document])
        if not isinstance(document.get("resourceType"), str):
            return UnitResult(b"", malformed=[Malformed(unit.position, MalformedReason.no_resource_type, "no resourceType")])
        scrubber = ResourceScrubber(context)
        if document["resourceType"] != "Bundle":
            scrubbed, applied = scrubber.scrub(document)
            out = _dump(scrubbed)
            return UnitResult(out, [context.document(unit.source, unit.position, _identity(document, unit.position), data, out, applied)])
        return self._bundle(document, unit, context, scrubber)

    def _bundle(self, bundle: dict[str, Any], unit: Unit, context: ReaderContext, scrubber: ResourceScrubber) -> UnitResult:
        result = UnitResult(b"")
        entries = []
        records = []
        for index, entry in enumerate(bundle.get("entry", []) or []):
            position = f"{unit.position}#entry.{index}"
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                result.malformed.append(Malformed(position, MalformedReason.bad_entry, "entry without a resource"))
                continue
            raw = _dump(resource)
            scrubbed, applied = scrubber.scrub(resource)
            new_entry = dict(entry)
            new_entry["resource"] = scrubbed
            if isinstance(entry.get("fullUrl"), str):
                new_entry["fullUrl"] = scrubber.rewrite_reference(entry["fullUrl"])
            if isinstance(entry.get("request"), dict) and isinstance(entry["request"].get("url"), str):
                new_entry["request"] = {**entry["request"], "url": scrubber.rewrite_reference(entry["request"]["url"])}
            entries.append(new_entry)
            records.append((position, _identity(resource, position), raw, _dump(scrubbed), applied))
        envelope = {key: value for key, value in bundle.items() if key != "entry"}
        out_bundle, _ = scrubber.scrub(envelope)  # Bundle id, identifier and timestamp
        out_bundle["entry"] = entries
        result.output = _dump(out_bundle, indent=True)
        for position, identity, raw, out, applied in records:
            result.documents.append(context.document(unit.source, position, identity, raw, out, applied))
        return result


def _dump(value: Any, indent: bool = False) -> bytes:
    if indent:
        return (json.dumps(value, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

