"""The clinician-facing consultation endpoint: a question in, an answer with its disclaimer out."""
