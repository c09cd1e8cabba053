"""De-identification of hospital records: detection, surrogates, record readers and the audit ledger.

This package must not import ``serve`` or the ML stack (torch, transformers): it runs on
machines that only de-identify.
"""
