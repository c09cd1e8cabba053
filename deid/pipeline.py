"""De-identify whole datasets: files or folders in, the same names and formats out.

The parent process reads units (lines, rows, notes, Bundles), hands them in bounded batches to
worker processes (or transforms them itself with one worker), and alone writes the outputs,
the audit ledger and the progress journal, in input order. Memory is bounded by the batch
window, not the input size. Each output is built as a partial file under ``.deid-state`` and
renamed into place when complete; checkpoints in the journal let a killed run resume at the
exact record where the last durable checkpoint left it (see :mod:`deid.journal`). Digests of
every fake written go to ``.deid-state/.surrogates.sha256`` (see :mod:`deid.surrogate_registry`),
for the dataset's PHI gate.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from deid.anonymize.operators import Anonymizer
from deid.anonymize.scrubber import Detector, Scrubber
from deid.anonymize.surrogates import SurrogateFactory
from deid.config import DeidConfig
from deid.detection.parallel import guard_worker, worker_context
from deid.errors import RunInputError, UnsupportedFormatError
from deid.file_names import FILE_NAME_SECRET, output_name
from deid.journal import FileProgress, Journal
from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.config import LedgerConfig
from deid.ledger.entry import split_line
from deid.ledger.writer import LedgerWriter
from deid.readers.base import NoPatients, PatientLookup, ReaderContext, RecordFormat, Unit, UnitResult, entity_counts
from deid.readers.fhir import FhirJsonFormat, FhirNdjsonFormat
from deid.readers.patients import PatientIndex, build_patient_index, patients_in_json, patients_in_ndjson, private_index
from deid.readers.registry import format_for
from deid.site_terms import load_site_terms
from deid.surrogate_registry import RegistryWriter
from deid.vault import Vault

STATE_DIR = ".deid-state"
# Hidden name and a ".partial" suffix: corpus readers that walk the output folder skip both.
JOURNAL_FILE = ".journal.jsonl"
SURROGATE_SECRET = "surrogate"
DOCUMENT_SECRET = "document-id"
BATCH_UNITS = 16
# The vault row's type: a fake is sealed wherever it was made, and only the scrubber knows the type.
VAULT_ENTITY = "PHI"
CHECKPOINT_UNITS = 256
CHECKPOINT_SECONDS = 5.0
MAX_REPORTED = 1000
_LEDGER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")


@dataclass(frozen=True, slots=True)
class InputFile:
    path: Path
    name: str  # output path relative to the output folder, POSIX form
    reader: RecordFormat


@dataclass(frozen=True, slots=True)
class Problem:
    """A skipped file or malformed record: where and why, never what it contained."""

    position: str
    reason: str
    detail: str


@dataclass(slots=True)
class RunSummary:
    out_dir: Path
    ledger_path: Path
    run_id: str
    files: int = 0
    files_resumed: int = 0
    documents: int = 0
    malformed: int = 0
    skipped: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # the first MAX_REPORTED malformed records
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
            "problems": [asdict(p) for p in self.skipped + self.problems],
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
    if detector is None:
        from deid.detection.engine import PhiDetector

        detector = PhiDetector(spec.config)
    surrogates = SurrogateFactory(
        spec.surrogate_secret, date_shift_max_days=spec.config.date_shift_max_days, keep_originals=spec.keep_originals
    )
    anonymizer = Anonymizer(spec.config, surrogates)
    patients: PatientLookup = PatientIndex(spec.patient_index) if spec.patient_index else NoPatients()
    return ReaderContext(spec.config, Scrubber(detector, anonymizer), patients, spec.document_secret)


# A worker process builds its detector once (about a second) and keeps it for every batch it
# is sent; the executor's initializer is the only hook for that, hence this per-process slot.
_WORKER: dict[str, ReaderContext] = {}


def _init_worker(spec: WorkerSpec) -> None:
    guard_worker()
    _WORKER["context"] = build_context(spec)


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
        return UnitResult(b"", malformed=[(unit.position, "unprocessable", f"cannot be processed ({type(error).__name__})")])
    result.surrogates = surrogates.drain_registered()
    result.originals = surrogates.drain_originals()
    return result


def _transform_batch(reader: RecordFormat, units: list[Unit]) -> list[UnitResult]:
    context = _WORKER["context"]
    return [transform_unit(reader, unit, context) for unit in units]


def settings_sha256(config: DeidConfig) -> str:
    """The settings and the content of the site's term list: an edited list is a different rule set."""
    digest = hashlib.sha256(config.model_dump_json().encode("utf-8"))
    if config.site_terms_file is not None and config.site_terms_file.is_file():
        digest.update(b"\0site-terms\0" + hashlib.sha256(config.site_terms_file.read_bytes()).digest())
    return digest.hexdigest()


def _engine_versions() -> tuple[str, str]:
    """(detector, rules) versions for the ledger: the package and Presidio releases, and a hash
    of the detection code and word lists actually installed, so an auditor can tell runs with
    different rules apart even within one release."""
    try:
        package = version("medical-appliance")
    except PackageNotFoundError:
        package = "0"
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for folder in ("detection", "recognizers"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{package}+presidio{version('presidio-analyzer')}", digest.hexdigest()[:16]


def collect_inputs(inputs: list[Path], out_dir: Path) -> tuple[list[InputFile], list[Problem]]:
    """Every file to process, named as it will be in the output. A named file in an unknown
    format is an error; an unknown file inside a folder is skipped and reported."""
    files: list[InputFile] = []
    skipped: list[Problem] = []
    out_resolved = out_dir.resolve()
    for given in inputs:
        if not given.exists():
            raise RunInputError(f"{given}: no such file or folder")
        if given.is_file():
            files.append(InputFile(given, given.name, format_for(given)))
            continue
        for path in sorted(p for p in given.rglob("*") if p.is_file()):
            relative = path.relative_to(given)
            if STATE_DIR in relative.parts or out_resolved in path.resolve().parents:
                continue
            try:
                files.append(InputFile(path, relative.as_posix(), format_for(path)))
            except UnsupportedFormatError:
                skipped.append(Problem(relative.as_posix(), "unsupported_format", "unsupported format"))
    seen: dict[str, Path] = {}
    for item in files:
        if item.name in seen:
            raise RunInputError(f"{item.name}: comes from both {seen[item.name]} and {item.path}; outputs would collide")
        seen[item.name] = item.path
    return files, skipped


def _index_patients(files: list[InputFile], database: Path) -> Path | None:
    fhir = [f for f in files if isinstance(f.reader, (FhirNdjsonFormat, FhirJsonFormat))]
    if not fhir:
        return None

    def patients() -> Iterator[dict[str, Any]]:
        for item in fhir:
            reader = patients_in_ndjson if isinstance(item.reader, FhirNdjsonFormat) else patients_in_json
            yield from reader(item.path)

    build_patient_index(database, patients())
    return database


def _record_id(position: str, source: str) -> str:
    tail = position[len(source) :] if position.startswith(source) else position
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]+", ".", tail).strip(".:-_")
    return cleaned[:64] or "file"


def _logged_documents(ledger_path: Path, start: int, run_id: str) -> set[str]:
    """Document ids this run wrote to the ledger after byte ``start`` (before it was killed)."""
    found: set[str] = set()
    if not ledger_path.exists():
        return found
    with open(ledger_path, "rb") as handle:
        handle.seek(start)
        for raw in handle:
            parts = split_line(raw.rstrip(b"\n"))
            if parts is None:
                continue
            payload = json.loads(parts[0]).get("payload", {})
            if payload.get("run_id") == run_id and "document_id" in payload:
                found.add(payload["document_id"])
    return found


class _Run:
    """One invocation: the state shared by the per-file loops."""

    def __init__(
        self,
        out_dir: Path,
        config: DeidConfig,
        ledger: LedgerWriter,
        ledger_path: Path,
        journal: Journal,
        registry: RegistryWriter,
        summary: RunSummary,
        context: ReaderContext | None,
        executor: ProcessPoolExecutor | None,
        window: int,
        vault: Vault | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.config = config
        self.ledger = ledger
        self.ledger_path = ledger_path
        self.journal = journal
        self.registry = registry
        self.summary = summary
        self.context = context
        self.executor = executor
        self.window = window
        self.vault = vault
        self.settings_sha256 = settings_sha256(config)
        self.detector_version, self.rules_version = _engine_versions()

    def _results(self, reader: RecordFormat, units: Iterator[tuple[Unit, int, int]]) -> Iterator[tuple[UnitResult, int, int]]:
        """Transformed units in input order, at most ``window`` batches in flight."""
        if self.executor is None:
            assert self.context is not None
            for unit, offset, line in units:
                yield transform_unit(reader, unit, self.context), offset, line
            return
        pending: deque[tuple[list[tuple[int, int]], Future[list[UnitResult]]]] = deque()

        def submit(batch: list[tuple[Unit, int, int]]) -> None:
            assert self.executor is not None
            future = self.executor.submit(_transform_batch, reader, [unit for unit, _, _ in batch])
            pending.append(([(offset, line) for _, offset, line in batch], future))

        batch: list[tuple[Unit, int, int]] = []
        for item in units:
            batch.append(item)
            if len(batch) >= BATCH_UNITS:
                submit(batch)
                batch = []
                while len(pending) >= self.window:
                    yield from self._drain(pending.popleft())
        if batch:
            submit(batch)
        while pending:
            yield from self._drain(pending.popleft())

    @staticmethod
    def _drain(item: tuple[list[tuple[int, int]], Future[list[UnitResult]]]) -> Iterator[tuple[UnitResult, int, int]]:
        positions, future = item
        for result, (offset, line) in zip(future.result(), positions, strict=True):
            yield result, offset, line

    def _ledger_payload(self, item: InputFile, reader: RecordFormat, document: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "run_id": self.summary.run_id,
            "document_id": document.identity,
            "record_id": _record_id(document.position, item.name),
            "format": reader.name,
            "detector_version": self.detector_version,
            "rules_version": self.rules_version,
            "settings_sha256": self.settings_sha256,
            "input_hmac_sha256": document.input_hmac,
            "output_sha256": document.output_sha256,
            "unchanged": document.unchanged,
            "entity_counts": entity_counts(document.applied),
            "spans": [span.as_dict() for span in document.applied],
        }
        base = Path(item.name).name
        if _LEDGER_NAME.fullmatch(base):
            payload["source"] = base
        else:
            payload["source_sha256"] = hashlib.sha256(item.name.encode("utf-8")).hexdigest()
        return payload

    def _checkpoint(self, name: str, progress: FileProgress, output: IO[bytes]) -> None:
        output.flush()
        os.fsync(output.fileno())
        fd = os.open(self.ledger_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        progress.out_bytes = output.tell()
        progress.ledger_bytes = self.ledger_path.stat().st_size
        self.registry.flush()  # the fakes of every unit the journal is about to call done
        self.journal.progress(name, progress)

    def process(self, item: InputFile) -> None:
        stat = item.path.stat()
        progress = self.journal.for_file(item.name, stat.st_size, stat.st_mtime_ns)
        partial = self.out_dir / STATE_DIR / "partial" / f"{item.name}.partial"
        final = self.out_dir / item.name
        reader = item.reader
        if progress.done:
            self._finish(partial, final)
            self._count_finished(item.name, progress)
            return
        resuming = item.name in self.journal.state.files
        partial.parent.mkdir(parents=True, exist_ok=True)
        if resuming:
            self.summary.files_resumed += 1
            output = open(partial, "r+b")
            output.truncate(progress.out_bytes)
            output.seek(progress.out_bytes)
            already = _logged_documents(self.ledger_path, progress.ledger_bytes, self.summary.run_id)
        else:
            output = open(partial, "wb")
            output.write(reader.header(item.path, self.config))
            already = set()
        with output:
            self._checkpoint(item.name, progress, output)
            self._stream(item, reader, progress, output, already)
            progress.done = True
            self._checkpoint(item.name, progress, output)
        self._finish(partial, final, empty=progress.documents == 0 and progress.malformed > 0)
        self._count_finished(item.name, progress)

    def _stream(self, item: InputFile, reader: RecordFormat, progress: FileProgress, output: IO[bytes], already: set[str]) -> None:
        units = reader.units(item.path, item.name, progress.offset, progress.line)
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
                    self.ledger.append("deid.document", self._ledger_payload(item, reader, document))
                progress.documents += 1
                self.summary.entity_counts.update(entity_counts(document.applied))
            for position, reason, detail in result.malformed:
                malformed_id = hashlib.sha256(f"{self.summary.run_id}\x1f{position}".encode()).hexdigest()
                if malformed_id not in already:
                    payload = {"run_id": self.summary.run_id, "document_id": malformed_id,
                               "record_id": _record_id(position, item.name), "reason": reason, "format": reader.name}
                    self.ledger.append("deid.malformed", payload)
                progress.malformed += 1
                self.journal.problem(item.name, position, reason, detail)
            progress.offset, progress.line = offset, line
            since += 1
            if since >= CHECKPOINT_UNITS or time.monotonic() - last > CHECKPOINT_SECONDS:
                self._checkpoint(item.name, progress, output)
                since, last = 0, time.monotonic()

    def _finish(self, partial: Path, final: Path, empty: bool = False) -> None:
        """Publish a completed partial output (no-op when a resumed run already did)."""
        if not partial.exists():
            return
        if empty:  # every record was malformed: no output file, the problems are reported
            partial.unlink()
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _count_finished(self, name: str, progress: FileProgress) -> None:
        self.summary.files += 1
        self.summary.documents += progress.documents
        self.summary.malformed += progress.malformed
        for position, (reason, detail) in self.journal.state.problems.get(name, {}).items():
            if len(self.summary.problems) < MAX_REPORTED:
                self.summary.problems.append(Problem(position, reason, detail))


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
    run_id = journal.begin(secrets.token_hex(8), settings_sha256(config))
    summary = RunSummary(out_dir, ledger_path, run_id, skipped=skipped)
    with private_index(scratch_dir or keystore.directory.parent / "scratch") as database:
        # The index holds patients' real names: private to the appliance home, gone with the run.
        index = _index_patients(files, database)
        spec = WorkerSpec(
            config, keystore.secret(SURROGATE_SECRET), keystore.secret(DOCUMENT_SECRET), index, keep_originals=vault is not None
        )
        executor = (
            ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=_init_worker, initargs=(spec,))
            if workers > 1
            else None
        )
        context = build_context(spec, detector) if executor is None else None
        try:
            with LedgerWriter.open(
                ledger_path,
                keystore.signing_key(),
                auth=LedgerAuth.from_keystore(keystore, ledger_config.auth_secret),
                actor=actor,
                checkpoint_every=ledger_config.checkpoint_every,
                fsync=False,
            ) as ledger:
                run = _Run(
                    out_dir, config, ledger, ledger_path, journal, registry, summary, context, executor, window=2 * workers, vault=vault
                )
                for done, item in enumerate(files):
                    run.process(item)
                    if progress is not None:
                        progress(ProgressUpdate(item.name, done + 1, len(files), summary.documents))
                registry.publish()
                summary.surrogates_registered = len(registry)
                ledger.append(
                    "deid.run",
                    {
                        "run_id": run_id,
                        "settings_sha256": run.settings_sha256,
                        "detector_version": run.detector_version,
                        "files_count": summary.files,
                        "documents": summary.documents,
                        "malformed_count": summary.malformed,
                        "skipped_count": len(summary.skipped),
                        "entity_counts": dict(summary.entity_counts),
                    },
                )
        finally:
            if executor is not None:
                executor.shutdown(cancel_futures=True)
    return summary
