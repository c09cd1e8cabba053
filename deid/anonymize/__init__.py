"""Anonymization: keyed surrogates, format-keeping date shifts and redaction tags for detected PHI."""
