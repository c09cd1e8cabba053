"""What the API learns about PHI in prompts: its types for the ledger, and optional redaction."""
