"""De-identify whole datasets: files or folders in, the same names and formats out.

The parent process reads units (lines, rows, notes, Bundles), hands them in bounded batches to
worker processes (:mod:`deid.workers`; or transforms them itself with one worker), and alone
writes the outputs, the audit ledger and the progress journal, in input order. Memory is bounded
by the batch window, not the input size. Each output is built as a partial file under
``.deid-state`` and published when complete (:mod:`deid.run.publish`); checkpoints in the journal
let a killed run resume at the exact record where the last durable checkpoint left it (see
:mod:`deid.journal`). Digests of every fake written go to ``.deid-state/.surrogates.sha256`` (see
:mod:`deid.surrogate_registry`), for the dataset's PHI gate.

By job: :mod:`~deid.run.inputs` finds the files, :mod:`~deid.run.fingerprint` names the rules
that ran, :mod:`~deid.run.entries` is what the ledger records (and reads back on resume),
:mod:`~deid.run.publish` makes outputs durable, :mod:`~deid.run.runner` is the run itself.
"""
