"""The run itself: every input file through its reader, in order, resumable at the record.

Only this process writes: the partial outputs, the ledger, the journal, the surrogate registry
and the optional vault. Units are transformed here or in the worker pool (:mod:`deid.workers`)
and come back in input order; after every ``CHECKPOINT_UNITS`` units (or ``CHECKPOINT_SECONDS``)
what was written is made durable and the journal records where the next unit starts.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import IO, Any

from deid.anonymize.operators import Anonymizer
from deid.anonymize.scrubber import Detector, Scrubber
from deid.anonymize.surrogates import SurrogateFactory
from deid.config import DeidConfig
from deid.file_names import FILE_NAME_SECRET, output_name
from deid.journal import FileProgress, Journal
from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.config import LedgerConfig
from deid.ledger.writer import LedgerWriter
from deid.malformed import Malformed, MalformedReason
from deid.readers.base import NoPatients, PatientLookup, ReaderContext, RecordFormat, Unit, UnitResult, entity_counts
from deid.readers.patients import PatientIndex, private_index
from deid.run.entries import DocumentEntry, MalformedEntry, RunEntry, logged_document_ids
from deid.run.fingerprint import Fingerprint
from deid.run.inputs import InputFile, collect_inputs, index_patients
from deid.run.publish import STATE_DIR, fsync_path, partial_path, publish, sync_output
from deid.site_terms_file import load_site_terms
from deid.surrogate_registry import RegistryWriter
from deid.vault import Vault
from deid.workers import OrderedPool

JOURNAL_FILE = ".journal.jsonl"
SURROGATE_SECRET = "surrogate"
DOCUMENT_SECRET = "document-id"
# The vault row's type: a fake is sealed wherever it was made, and only the scrubber knows the type.
VAULT_ENTITY = "PHI"
CHECKPOINT_UNITS = 256
CHECKPOINT_SECONDS = 5.0
MAX_REPORTED = 1000


@dataclass(slots=True)
class RunSummary:
    out_dir: Path
    ledger_path: Path
    run_id: str
    files: int = 0
    files_resumed: int = 0
    documents: int = 0
    malformed: int = 0
    skipped: list[Malformed] = field(default_factory=list)  # files in no format the run reads
    problems: list[Malformed] = field(default_factory=list)  # the first MAX_REPORTED malformed records
    entity_counts: Counter[str] = field(default_factory=Counter)
    surrogates_registered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "ledger": str(self.ledger_path),
            "run_id": self.run_id,
            "files": self.files,
            "files_resumed": self.files_resumed,
            "documents": self.documents,
            "malformed": self.malformed,
            "skipped_files": len(self.skipped),
            "entity_counts": dict(sorted(self.entity_counts.items())),
            "surrogates_registered": self.surrogates_registered,
            "problems": [p.as_dict() for p in self.skipped + self.problems],
        }


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    file: str
    files_done: int
    files_total: int
    documents: int


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker process needs to build its own detector and anonymizer."""

    config: DeidConfig
    surrogate_secret: bytes
    document_secret: bytes
    patient_index: Path | None
    keep_originals: bool = False  # for the re-identification vault


def build_context(spec: WorkerSpec, detector: Detector | None = None) -> ReaderContext:
    """A reader context from ``spec``: once per worker process, or once in this one."""
    if detector is None:
        from deid.detection.engine import PhiDetector

        detector = PhiDetector(spec.config)
    surrogates = SurrogateFactory(
        spec.surrogate_secret, date_shift_max_days=spec.config.date_shift_max_days, keep_originals=spec.keep_originals
    )
    anonymizer = Anonymizer(spec.config, surrogates)
    patients: PatientLookup = PatientIndex(spec.patient_index) if spec.patient_index else NoPatients()
    return ReaderContext(spec.config, Scrubber(detector, anonymizer), patients, spec.document_secret)


def transform_unit(reader: RecordFormat, unit: Unit, context: ReaderContext) -> UnitResult:
    """One unit, never raising: a record the reader cannot handle is reported, not fatal. The
    fakes it handed out travel back with the result (those of a failed unit are dropped)."""
    surrogates = context.anonymizer.surrogates
    try:
        result = reader.transform(unit, context)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, LookupError, RecursionError) as error:
        surrogates.drain_registered()
        surrogates.drain_originals()
        # the exception's type only: its message may quote the record
        problem = Malformed(unit.position, MalformedReason.unprocessable, f"cannot be processed ({type(error).__name__})")
        return UnitResult(b"", malformed=[problem])
    result.surrogates = surrogates.drain_registered()
    result.originals = surrogates.drain_originals()
    return result


def transform_units(reader: RecordFormat, context: ReaderContext, units: list[Unit]) -> list[UnitResult]:
    """A batch of units: the pool's task, in a worker or here."""
    return [transform_unit(reader, unit, context) for unit in units]


class _Run:
    """One invocation: the state shared by the per-file loops."""

    def __init__(
        self,
        out_dir: Path,
        config: DeidConfig,
        fingerprint: Fingerprint,
        ledger: LedgerWriter,
        ledger_path: Path,
        journal: Journal,
        registry: RegistryWriter,
        summary: RunSummary,
        pool: OrderedPool[WorkerSpec, ReaderContext],
        vault: Vault | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.config = config
        self.fingerprint = fingerprint
        self.ledger = ledger
        self.ledger_path = ledger_path
        self.journal = journal
        self.registry = registry
        self.summary = summary
        self.pool = pool
        self.vault = vault

    def _results(self, reader: RecordFormat, units: Iterator[tuple[Unit, int, int]]) -> Iterator[tuple[UnitResult, int, int]]:
        """Transformed units in input order, each with the offset and line a resume starts after it."""
        after: deque[tuple[int, int]] = deque()

        def bare() -> Iterator[Unit]:
            for unit, offset, line in units:
                after.append((offset, line))
                yield unit

        for result in self.pool.map(partial(transform_units, reader), bare()):
            offset, line = after.popleft()
            yield result, offset, line

    def _checkpoint(self, name: str, progress: FileProgress, output: IO[bytes]) -> None:
        progress.out_bytes = sync_output(output)
        fsync_path(self.ledger_path)
        progress.ledger_bytes = self.ledger_path.stat().st_size
        self.registry.flush()  # the fakes of every unit the journal is about to call done
        self.journal.progress(name, progress)

    def process(self, item: InputFile) -> None:
        stat = item.path.stat()
        progress = self.journal.for_file(item.name, stat.st_size, stat.st_mtime_ns)
        partial_output = partial_path(self.out_dir, item.name)
        final = self.out_dir / item.name
        reader = item.reader
        if progress.done:
            publish(partial_output, final)
            self._count_finished(item.name, progress)
            return
        resuming = item.name in self.journal.state.files
        partial_output.parent.mkdir(parents=True, exist_ok=True)
        with open(partial_output, "r+b" if resuming else "wb") as output:
            if resuming:
                self.summary.files_resumed += 1
                output.truncate(progress.out_bytes)
                output.seek(progress.out_bytes)
                already = logged_document_ids(self.ledger_path, progress.ledger_bytes, self.summary.run_id)
            else:
                output.write(reader.header(item.path, self.config))
                already = set()
            self._checkpoint(item.name, progress, output)
            self._stream(item, reader, progress, output, already)
            progress.done = True
            self._checkpoint(item.name, progress, output)
        publish(partial_output, final, empty=progress.documents == 0 and progress.malformed > 0)
        self._count_finished(item.name, progress)

    def _stream(self, item: InputFile, reader: RecordFormat, progress: FileProgress, output: IO[bytes], already: set[str]) -> None:
        units = reader.units(item.path, item.name, progress.offset, progress.line)
        run_id = self.summary.run_id
        since = 0
        last = time.monotonic()
        for result, offset, line in self._results(reader, units):
            output.write(result.output)
            self.registry.add(result.surrogates)
            if self.vault is not None and result.originals:
                # Sealed before the checkpoint that calls this unit done; a rerun re-seals the same rows.
                for document in result.documents:
                    self.vault.put_many(document.identity, ((fake, real, VAULT_ENTITY) for fake, real in result.originals))
            for document in result.documents:
                if document.identity not in already:
                    entry = DocumentEntry(run_id, item.name, reader.name, self.fingerprint, document)
                    self.ledger.append(entry.action, entry.payload())
                progress.documents += 1
                self.summary.entity_counts.update(entity_counts(document.applied))
            for problem in result.malformed:
                skipped = MalformedEntry(run_id, item.name, reader.name, problem)
                if skipped.document_id not in already:
                    self.ledger.append(skipped.action, skipped.payload())
                progress.malformed += 1
                self.journal.problem(item.name, problem)
            progress.offset, progress.line = offset, line
            since += 1
            if since >= CHECKPOINT_UNITS or time.monotonic() - last > CHECKPOINT_SECONDS:
                self._checkpoint(item.name, progress, output)
                since, last = 0, time.monotonic()

    def _count_finished(self, name: str, progress: FileProgress) -> None:
        self.summary.files += 1
        self.summary.documents += progress.documents
        self.summary.malformed += progress.malformed
        for problem in self.journal.state.problems.get(name, {}).values():
            if len(self.summary.problems) < MAX_REPORTED:
                self.summary.problems.append(problem)


def deidentify(
    inputs: list[Path],
    out_dir: Path,
    *,
    config: DeidConfig,
    keystore: Keystore,
    ledger_path: Path,
    ledger_config: LedgerConfig,
    workers: int = 1,
    actor: str = "deid-run",
    progress: Callable[[ProgressUpdate], None] | None = None,
    detector: Detector | None = None,
    vault: Vault | None = None,
    scratch_dir: Path | None = None,
) -> RunSummary:
    """De-identify ``inputs`` into ``out_dir``; resumes a killed run found there.

    ``detector`` lets a caller that already holds a detector built from ``config`` (the demo,
    tests) skip building another; worker processes always build their own. With ``vault`` (the
    optional re-identification vault) every fake of every document is sealed there with its original.
    ``scratch_dir`` holds the run's private patient index; default: ``scratch`` beside the keystore,
    in the appliance home. Output names are keyed pseudonyms where an input name may carry PHI
    (:mod:`deid.file_names`); everything the run writes or reports uses the output name.
    """
    if config.site_terms_file is not None:
        load_site_terms(config.site_terms_file)  # refuse a bad list here, not in every worker
    files, skipped = collect_inputs([Path(p) for p in inputs], out_dir)
    name_secret = keystore.secret(FILE_NAME_SECRET)
    files = [replace(item, name=output_name(item.name, name_secret, config.file_naming)) for item in files]
    skipped = [replace(p, position=output_name(p.position, name_secret, config.file_naming)) for p in skipped]
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(out_dir / STATE_DIR / JOURNAL_FILE)
    registry = RegistryWriter(out_dir / STATE_DIR)
    fingerprint = Fingerprint.of(config)
    run_id = journal.begin(secrets.token_hex(8), fingerprint.settings_sha256)
    summary = RunSummary(out_dir, ledger_path, run_id, skipped=skipped)
    with private_index(scratch_dir or keystore.directory.parent / "scratch") as database:
        # The index holds patients' real names: private to the appliance home, gone with the run.
        index = index_patients(files, database)
        spec = WorkerSpec(
            config, keystore.secret(SURROGATE_SECRET), keystore.secret(DOCUMENT_SECRET), index, keep_originals=vault is not None
        )
        local = build_context(spec, detector) if workers <= 1 else None
        with (
            OrderedPool(workers, build_context, spec, local=local) as pool,
            LedgerWriter.open(
                ledger_path,
                keystore.signing_key(),
                auth=LedgerAuth.from_keystore(keystore, ledger_config.auth_secret),
                actor=actor,
                checkpoint_every=ledger_config.checkpoint_every,
                fsync=False,
            ) as ledger,
        ):
            run = _Run(out_dir, config, fingerprint, ledger, ledger_path, journal, registry, summary, pool, vault=vault)
            for done, item in enumerate(files):
                run.process(item)
                if progress is not None:
                    progress(ProgressUpdate(item.name, done + 1, len(files), summary.documents))
            registry.publish()
            summary.surrogates_registered = len(registry)
            totals = RunEntry(
                run_id, fingerprint, summary.files, summary.documents, summary.malformed, len(summary.skipped), summary.entity_counts
            )
            ledger.append(totals.action, totals.payload())
    return summary
