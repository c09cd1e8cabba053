"""Hash-chained, signed, PHI-free audit ledger.

One JSONL file, one entry per line: ``seq``, UTC ``time``, ``actor``, ``action``, ``payload``,
``prev`` (the previous entry's hash) and ``hash`` (sha256 of the entry's canonical bytes; see
:mod:`deid.ledger.entry`). Signed ``checkpoint`` entries (Ed25519, carrying the key id) seal
the head every ``checkpoint_every`` entries and when a writer closes, so edits, deletions,
insertions, reordering and truncation all show up in :func:`deid.ledger.verify.verify_ledger`.
Payloads are typed by :mod:`deid.ledger.payload`: ids, hashes, versions, counts and offsets,
never text.

Writers: :class:`deid.ledger.writer.LedgerWriter` (many processes may append to one file).
Auditors: :func:`deid.ledger.verify.verify_ledger`, :func:`deid.ledger.verify.ledger_head`,
:func:`deid.ledger.report.build_report` and the ``appliance audit`` commands.
"""
