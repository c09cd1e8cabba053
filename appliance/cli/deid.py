"""CLI area 'deid': PHI detection and de-identification of record files."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from

deid_app = typer.Typer(help="De-identification: find PHI, de-identify records.", no_args_is_help=True)


@deid_app.command("detect")
def detect(
    ctx: typer.Context,
    input_path: Annotated[Path, typer.Argument(help="JSONL file with one {\"id\", \"text\"} object per line")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file of {\"id\", \"spans\"} per record")],
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="worker processes (default: settings)")] = None,
) -> None:
    """Find PHI spans (character offsets into each text); detection only, nothing is changed."""
    from deid.detection.jsonl_detect import detect_jsonl
    from deid.errors import InputError

    if not input_path.is_file():
        raise InputError(f"{input_path}: no such input file")
    settings = settings_from(ctx)
    report = detect_jsonl(input_path, output, settings.deid, workers)
    for problem in report.malformed:
        console.print(f"{problem.position}: skipped: {problem.detail}", markup=False)
    console.print(f"{report.records} records, {report.spans} PHI spans -> {output}", markup=False)
    if report.malformed:
        raise InputError(f"{len(report.malformed)} malformed line(s) in {input_path}; the other records were written")


@deid_app.command("run")
def run(
    ctx: typer.Context,
    inputs: Annotated[list[Path], typer.Argument(help="record files or folders (text, JSONL, CSV/TSV, FHIR NDJSON or JSON, HL7 v2, C-CDA)")],
    out: Annotated[Path, typer.Option("--out", help="output folder: same file names and formats, de-identified")],
    ledger: Annotated[Path | None, typer.Option("--ledger", help="audit ledger to append to (default: the appliance's)")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="worker processes (default: settings)")] = None,
) -> None:
    """De-identify whole datasets; a killed run resumes when rerun with the same --out. Exits 13
    when files were skipped, 3 when records were malformed (the rest is written either way)."""
    from deid.errors import IncompleteRunError, InputError
    from deid.keystore import Keystore
    from deid.run.runner import ProgressUpdate, deidentify

    settings = settings_from(ctx)
    passphrase = settings.keystore.passphrase.get_secret_value() if settings.keystore.passphrase else None
    keystore = Keystore.open(settings.keystore_dir, passphrase)

    def report(update: ProgressUpdate) -> None:
        console.print(f"[{update.files_done}/{update.files_total}] {update.file} ({update.documents} documents so far)", markup=False)

    with contextlib.ExitStack() as stack:
        vault = None
        if settings.ledger.vault_enabled:
            from deid.vault import Vault

            vault = stack.enter_context(Vault.open(settings.vault_file, keystore.secret(settings.ledger.vault_secret)))
        summary = deidentify(
            inputs,
            out,
            config=settings.deid,
            keystore=keystore,
            ledger_path=ledger or settings.deid_ledger,
            ledger_config=settings.ledger,
            workers=workers or settings.deid.workers,
            progress=report,
            vault=vault,
        )
    for problem in summary.skipped + summary.problems:
        console.print(f"{problem.position}: skipped: {problem.detail}", markup=False)
    console.print(
        f"{summary.files} files, {summary.documents} documents de-identified, {summary.malformed} malformed, "
        f"{len(summary.skipped)} files skipped -> {out} (ledger {summary.ledger_path})",
        markup=False,
    )
    if summary.skipped:
        raise IncompleteRunError(
            f"{len(summary.skipped)} file(s) skipped (unsupported format) and {summary.malformed} malformed record(s);"
            " everything else was written"
        )
    if summary.malformed:
        raise InputError(f"{summary.malformed} malformed record(s) skipped; everything else was written")


@deid_app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    gold: Annotated[Path, typer.Argument(help="hand-annotated JSONL: {\"id\", \"text\", \"spans\": [{\"start\", \"end\", \"label\"}]} per line")],
    out: Annotated[Path | None, typer.Option("--out", help="folder for evaluation.json (counts and rates only)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON instead of a table")] = False,
    ledger: Annotated[Path | None, typer.Option("--ledger", help="audit ledger to record in (default: the appliance's)")] = None,
    record: Annotated[bool, typer.Option("--record/--no-record", help="record the figures in the audit ledger")] = True,
) -> None:
    """Score detection (the effective settings) against a hand-annotated sample: token and span
    recall and precision, overall, per gold label and per predicted type, with 95% intervals."""
    import json

    from deid.detection.engine import PhiDetector
    from deid.errors import InputError
    from deid.evaluation import evaluate as evaluation
    from deid.fileio import atomic_write_text
    from deid.keystore import Keystore

    if not gold.is_file():
        raise InputError(f"{gold}: no such gold file")
    settings = settings_from(ctx)
    report = evaluation.evaluate_gold(gold, PhiDetector(settings.deid))
    for bad in report.malformed:
        console.print(f"{bad.position}: skipped: {bad.detail}", markup=False)
    figures = evaluation.metrics(report.evaluation)
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
    else:
        for line in evaluation.table(report):
            typer.echo(line)
    if out is not None:
        atomic_write_text(out / "evaluation.json", json.dumps({**figures, "malformed_lines": [b.line for b in report.malformed]}, indent=2))
    if record and report.evaluation.documents:
        passphrase = settings.keystore.passphrase.get_secret_value() if settings.keystore.passphrase else None
        keystore = Keystore.open(settings.keystore_dir, passphrase)
        target = ledger or settings.deid_ledger
        seq = evaluation.record(
            report, gold, keystore=keystore, ledger_path=target, ledger_config=settings.ledger, config=settings.deid
        )
        console.print(f"recorded as entry {seq} of {target}", markup=False)
    if report.malformed:
        raise InputError(f"{len(report.malformed)} malformed line(s) in {gold.name}; the other documents were scored")
    if not report.evaluation.documents:
        raise InputError(f"{gold.name}: no document to score")


@deid_app.command("sample")
def sample(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="output folder of 'appliance deid run'")],
    out: Annotated[Path, typer.Option("--out", help="folder for the annotation sheet and its manifest")],
    n: Annotated[int, typer.Option("--n", min=1, help="documents to draw")] = 200,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="random seed (default: a fresh one, recorded in the manifest)")] = None,
) -> None:
    """Draw a reproducible random sample of de-identified documents into a sheet for a privacy
    officer to annotate; the annotated sheet.jsonl is the input of 'deid evaluate'."""
    import secrets

    from deid.errors import InputError
    from deid.evaluation.evaluate import EVALUATION_SECRET
    from deid.evaluation.sampling import SHEET_JSONL, draw, write_sheet
    from deid.keystore import Keystore

    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder")
    if out.resolve().is_relative_to(run_dir.resolve()):
        raise InputError("--out must be outside the run folder, or the sheet would be sampled next time")
    settings = settings_from(ctx)
    passphrase = settings.keystore.passphrase.get_secret_value() if settings.keystore.passphrase else None
    keystore = Keystore.open(settings.keystore_dir, passphrase)
    chosen = secrets.randbelow(2**31) if seed is None else seed
    drawn, summary = draw(run_dir, n, chosen, keystore.secret(EVALUATION_SECRET))
    if not drawn:
        raise InputError(f"{run_dir}: no de-identified documents found")
    write_sheet(out, run_dir, drawn, summary)
    console.print(
        f"{summary.drawn} of {summary.population} documents from {summary.files} files (seed {summary.seed}, "
        f"{summary.skipped_files} files of no known format skipped) -> {out / SHEET_JSONL}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Attach the ``deid`` sub-app (``detect`` here; ``run`` is added beside it)."""
    app.add_typer(deid_app, name="deid")
