"""Record readers and writers: plain text, JSONL, CSV/TSV and FHIR R4 (bulk NDJSON, Bundles), same format out as in."""
