"""``appliance demo``: the whole flow on the embedded model and the shipped samples, then serve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from appliance.cli.context import console, settings_from


def register(app: typer.Typer) -> None:
    """Attach ``demo`` to the root app."""
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Work directory; default <home>/work")] = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the API when the flow is done")] = True,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="API port; default serve.port")] = None,
) -> None:
    """De-identify, build a training set, fine-tune, export, quantize, evaluate, and serve."""
    from appliance.demo import SUMMARY_FILE, index_sample_knowledge, run_demo

    settings = settings_from(ctx)
    target = workdir or settings.work_dir
    outcome = run_demo(settings, target, lambda line: console.print(line, markup=False))
    console.print(f"flow complete; summary in {target / SUMMARY_FILE}; outbound attempts: {outcome.egress_attempts}")
    if not serve:
        return

    index_sample_knowledge(settings, lambda line: console.print(line, markup=False))

    from appliance.serving import serve_context
    from serve.auth.keys import ApiKeyStore
    from serve.auth.protocol import Role
    from serve.server import run_server

    changes: dict[str, object] = {"model": outcome.served_model}
    if port is not None:
        changes["port"] = port
    served = settings.model_copy(update={"serve": settings.serve.model_copy(update=changes)})
    key, info = ApiKeyStore(served.api_keys_file).create(Role.clinician, "demo")
    console.print(f"a clinician key ({info.key_id}) was created for this demo; try the API with the curl line below:")
    typer.echo(f"export APPLIANCE_API_KEY={key}")
    run_server(serve_context(served), lambda line: console.print(line, markup=False))
