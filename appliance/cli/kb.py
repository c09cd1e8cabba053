"""CLI area 'kb': the approved knowledge base that grounds consultations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from appliance.cli.context import console, settings_from

if TYPE_CHECKING:
    from rich.status import Status

    from appliance.kb.base import AddReport, KnowledgeBase, Progress

kb_app = typer.Typer(help="Approved knowledge that grounds consultation answers.", no_args_is_help=True)


def _open(ctx: typer.Context, *, create: bool) -> KnowledgeBase:
    from appliance.kb.base import KnowledgeBase
    from deid.errors import InputError

    settings = settings_from(ctx)
    knowledge = KnowledgeBase.open(settings.kb_dir, settings.kb, create=create)
    if knowledge is None:
        raise InputError(f"no knowledge base at {settings.kb_dir}; add documents with 'appliance kb add PATH'")
    return knowledge


def _report(verb: str, report: AddReport) -> None:
    console.print(
        f"{verb}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed documents; {report.chunks} chunks embedded; "
        f"graph: {report.entities} entities, {report.edges} links",
        markup=False,
    )


def _progress(status: Status) -> Progress:
    def show(phase: str, done: int, total: int) -> None:
        status.update(f"{phase}: {done}/{total} documents" if phase == "embedding" else f"{phase}...")

    return show


@kb_app.command("add")
def add(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Markdown, text, HTML, PDF or JSONL(.gz) files, or folders")],
) -> None:
    """Add or update documents; unchanged ones are skipped by content hash."""
    knowledge = _open(ctx, create=True)
    try:
        with console.status("reading documents...") as status:
            report = knowledge.add(paths, progress=_progress(status))
    finally:
        knowledge.close()
    _report(f"{report.files} files", report)


@kb_app.command("list")
def list_sources(ctx: typer.Context) -> None:
    """One line per source file: documents, chunks, last added."""
    knowledge = _open(ctx, create=False)
    try:
        sources = knowledge.sources()
    finally:
        knowledge.close()
    for source in sources:
        when = datetime.fromtimestamp(source.added_at, tz=UTC).strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{source.documents:6d} docs {source.chunks:7d} chunks  {when}  {source.source}")
    console.print(f"{len(sources)} sources", markup=False)


@kb_app.command("remove")
def remove(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(help="Source files (as listed) or document keys")],
) -> None:
    """Remove every document that came from the given sources."""
    from deid.errors import InputError

    knowledge = _open(ctx, create=False)
    try:
        removed = knowledge.remove(targets)
    finally:
        knowledge.close()
    if removed == 0:
        raise InputError("nothing in the knowledge base matches; see 'appliance kb list'")
    console.print(f"removed {removed} documents", markup=False)


@kb_app.command("rebuild")
def rebuild(ctx: typer.Context) -> None:
    """Re-chunk, re-embed and re-link every stored document (after changing kb settings)."""
    knowledge = _open(ctx, create=False)
    try:
        with console.status("rebuilding...") as status:
            report = knowledge.rebuild(progress=_progress(status))
    finally:
        knowledge.close()
    _report("rebuilt", report)


@kb_app.command("search")
def search(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="A question, as a clinician would ask it")],
    k: Annotated[int | None, typer.Option("--k", min=1, help="passages to show; default kb.top_k")] = None,
    method: Annotated[str, typer.Option("--method", help="lexical, dense, hybrid or graph")] = "graph",
) -> None:
    """Show the passages a consultation would cite (chunk id, similarity, title, source)."""
    from appliance.kb.retrieval import Method
    from deid.errors import InputError

    if method not in Method.__members__:
        raise InputError(f"unknown method {method!r}; use lexical, dense, hybrid or graph")
    knowledge = _open(ctx, create=False)
    try:
        hits = knowledge.retriever().search(question, k or knowledge.config.top_k, Method(method))
    finally:
        knowledge.close()
    threshold = knowledge.config.min_similarity
    for number, hit in enumerate(hits, start=1):
        mark = " " if hit.similarity >= threshold else "-"
        typer.echo(
            f"[{number}]{mark}{hit.chunk.chunk_id} sim={hit.similarity:.2f} {hit.chunk.title}"
            f"{' / ' + hit.chunk.section if hit.chunk.section else ''} <{hit.chunk.url or Path(hit.chunk.source).name}>"
        )
    if not any(hit.similarity >= threshold for hit in hits):
        console.print("nothing relevant: no passage reaches kb.min_similarity", markup=False)


def register(app: typer.Typer) -> None:
    """Attach the ``kb`` sub-app."""
    app.add_typer(kb_app, name="kb")
