"""CLI area 'feedback': clinicians' ratings of API answers, turned into preference pairs for DPO."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from

feedback_app = typer.Typer(help="Clinicians' ratings of API answers.", no_args_is_help=True)


@feedback_app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="JSONL of {prompt, chosen, rejected} for 'train --method dpo'")],
) -> None:
    """Write preference pairs: a correction beats the answer it corrects; an answer rated up beats one rated down."""
    from deid.errors import InputError
    from deid.fileio import atomic_write_text
    from serve.feedback.service import FeedbackStore, preference_pairs, store_path

    settings = settings_from(ctx)
    path = store_path(settings.home)
    if not path.is_file():
        raise InputError(f"no feedback has been kept yet ({path} does not exist); rate answers via POST /v1/feedback")
    store = FeedbackStore(path, settings.serve.feedback_max_answers)
    try:
        ratings = list(store.ratings())
    finally:
        store.close()
    pairs = preference_pairs(ratings)
    atomic_write_text(out, "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs))
    console.print(f"{len(ratings)} ratings -> {len(pairs)} preference pairs (de-identified) -> {out}", markup=False)


def register(app: typer.Typer) -> None:
    """Attach the ``feedback`` sub-app."""
    app.add_typer(feedback_app, name="feedback")
