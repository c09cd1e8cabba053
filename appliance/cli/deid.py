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
    from appliance.errors import InputError
    from deid.detection.jsonl_detect import detect_jsonl

    if not input_path.is_file():
        raise InputError(f"{input_path}: no such input file")
    settings = settings_from(ctx)
    report = detect_jsonl(input_path, output, settings.deid, workers)
    for line_number, reason in report.malformed:
        console.print(f"{input_path}:{line_number}: skipped: {reason}", markup=False)
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
    from appliance.errors import IncompleteRunError, InputError
    from deid.keystore import Keystore
    from deid.pipeline import ProgressUpdate, deidentify

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


def register(app: typer.Typer) -> None:
    """Attach the ``deid`` sub-app (``detect`` here; ``run`` is added beside it)."""
    app.add_typer(deid_app, name="deid")
