"""Hash-chained, signed, PHI-free audit ledger."""
