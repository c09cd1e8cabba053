"""This replica's request ledger and the auditors' view of it."""
