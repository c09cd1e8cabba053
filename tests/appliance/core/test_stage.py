from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.pipeline.stage import StageContext, load_manifest, run_stage
from deid.errors import StageError, WorkdirError
from deid.fileio import sha256_file


def _writer(calls: list[str], content: str = "artifact"):
    def build(ctx: StageContext) -> dict[str, int]:
        calls.append(ctx.name)
        (ctx.output_dir / "out.txt").write_text(content)
        return {"count": 1}

    return build


def test_stage_writes_manifest_and_skips_when_unchanged(tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text("input")
    calls: list[str] = []
    first = run_stage(tmp_path / "work", "demo", settings={"a": 1}, inputs={"src": source}, build=_writer(calls))
    assert not first.skipped and calls == ["demo"]
    manifest = load_manifest(first.directory)
    assert manifest is not None
    assert manifest.artifact("out.txt").sha256 == sha256_file(first.path("out.txt"))
    assert manifest.inputs["src"] == sha256_file(source)
    assert manifest.details == {"count": 1}
    lineage = json.loads((tmp_path / "work" / "manifest.json").read_text())
    assert lineage["stages"]["demo"]["fingerprint"] == manifest.fingerprint

    again = run_stage(tmp_path / "work", "demo", settings={"a": 1}, inputs={"src": source}, build=_writer(calls))
    assert again.skipped and calls == ["demo"]

    run_stage(tmp_path / "work", "demo", settings={"a": 2}, inputs={"src": source}, build=_writer(calls))
    source.write_text("changed")
    run_stage(tmp_path / "work", "demo", settings={"a": 2}, inputs={"src": source}, build=_writer(calls))
    assert calls == ["demo", "demo", "demo"]


def test_a_tampered_artifact_is_rebuilt(tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text("input")
    calls: list[str] = []
    result = run_stage(tmp_path / "work", "s", settings={}, inputs={"src": source}, build=_writer(calls))
    result.path("out.txt").write_text("tampered")
    rebuilt = run_stage(tmp_path / "work", "s", settings={}, inputs={"src": source}, build=_writer(calls))
    assert not rebuilt.skipped
    assert rebuilt.path("out.txt").read_text() == "artifact"


def test_a_failed_stage_leaves_no_finished_looking_output(tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text("input")
    good = run_stage(tmp_path / "work", "s", settings={}, inputs={"src": source}, build=_writer([]))
    source.write_text("new input")

    def crash(ctx: StageContext) -> None:
        (ctx.output_dir / "out.txt").write_text("half")
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError):
        run_stage(tmp_path / "work", "s", settings={}, inputs={"src": source}, build=crash)
    # The previous finished output is untouched and no staging debris remains.
    assert good.path("out.txt").read_text() == "artifact"
    assert not any((tmp_path / "work" / ".staging").iterdir())
    rerun = run_stage(tmp_path / "work", "s", settings={}, inputs={"src": source}, build=_writer([], "fresh"))
    assert not rerun.skipped and rerun.path("out.txt").read_text() == "fresh"


def test_missing_input_and_unwritable_workdir(tmp_path: Path) -> None:
    with pytest.raises(StageError, match="does not exist"):
        run_stage(tmp_path / "w", "s", settings={}, inputs={"src": tmp_path / "nope"}, build=_writer([]))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(WorkdirError, match="not writable"):
        run_stage(blocker / "w", "s", settings={}, inputs={}, build=_writer([]))


def test_a_skipped_stage_is_listed_in_the_lineage_even_after_a_kill(tmp_path: Path) -> None:
    """A kill between the rename and the lineage update must not hide the stage forever."""
    source = tmp_path / "input.txt"
    source.write_text("input")
    work = tmp_path / "work"
    run_stage(work, "s", settings={}, inputs={"src": source}, build=_writer([]))
    (work / "manifest.json").unlink()
    again = run_stage(work, "s", settings={}, inputs={"src": source}, build=_writer([]))
    assert again.skipped
    assert json.loads((work / "manifest.json").read_text())["stages"]["s"]["fingerprint"] == again.manifest.fingerprint
