"""CLI area 'deid': PHI detection and de-identification of record files."""

from __future__ import annotations

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


def register(app: typer.Typer) -> None:
    """Attach the ``deid`` sub-app (``detect`` here; ``run`` is added beside it)."""
    app.add_typer(deid_app, name="deid")
