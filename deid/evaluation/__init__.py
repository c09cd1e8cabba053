"""Local accuracy checks: score the detector against a hospital's own hand-annotated sample.

No vendor figure holds on another hospital's notes, so a privacy officer draws a sample
(:mod:`deid.evaluation.sampling`), annotates it, and scores it (:mod:`deid.evaluation.scoring`);
the aggregate figures, never text, go into the audit ledger (:mod:`deid.evaluation.record`).
"""
