"""The whole flow on the tiny model, offline and strict: issue 2's proof that it runs end to end.

It drives the real CLI (``appliance demo --no-serve``) in a child process, because the egress
guard is process-wide: the child installs it in strict mode, and the demo summary reports how
many outbound attempts it saw (any would also have raised).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.demo import samples_dir
from tests.support.canaries import surrogates_could_produce

pytestmark = pytest.mark.slow

STAGES = ("deid", "dataset", "train", "export", "evaluate")
# PHI planted in the shipped sample notes: none of it may reach anything the flow writes.
CANARIES = ("KOWALCZYK", "123-45-6789", "555-0187", "LINDQVIST", "BRIARCLIFF")


def _environment(home: Path, model: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "APPLIANCE_HOME": str(home),
        "APPLIANCE_MODELS__BASE": str(model),
        "APPLIANCE_TRAIN__MAX_STEPS": "6",
        "APPLIANCE_TRAIN__CHECKPOINT_INTERVAL": "1",
        # The tiny test tokenizer spends about one token per 1.3 characters; real ones far fewer.
        "APPLIANCE_TRAIN__OVERLONG": "truncate",
        "APPLIANCE_EVAL__PUBMEDQA_LIMIT": "3",
        "APPLIANCE_EXPORT__MAX_PERPLEXITY_INCREASE": "10",
    }
    env.pop("APPLIANCE_CONFIG", None)
    return env


def _demo(workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "appliance", "demo", "--no-serve", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _finished_stages_are_intact(workdir: Path) -> None:
    """Whatever looks finished must verify: no half-written artifact is taken as done."""
    from appliance.pipeline.stage import load_manifest
    from deid.fileio import sha256_file

    for stage in STAGES:
        manifest = load_manifest(workdir / stage)
        if manifest is None:
            assert not (workdir / stage).exists(), f"{stage} directory exists without a manifest"
            continue
        for artifact in manifest.artifacts:
            assert sha256_file(workdir / stage / artifact.path) == artifact.sha256


def _files_containing(root: Path, needles: tuple[str, ...]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                if needle.encode() in data or needle.lower().encode() in data:
                    hits.append(f"{path.relative_to(root)}: {needle}")
    return hits


def test_canaries_are_not_surrogate_material() -> None:
    assert [c for c in CANARIES if surrogates_could_produce(c)] == []
    assert surrogates_could_produce("WHITAKER") and surrogates_could_produce("Greenview")


def test_demo_flow_offline_strict_killable_and_resumable(tiny_hf_model: Path, tmp_path: Path) -> None:
    home, workdir = tmp_path / "home", tmp_path / "work"
    env = _environment(home, tiny_hf_model)

    # 1. Kill the flow once training has begun; nothing half-written may look finished.
    first = _demo(workdir, env)
    assert first.stdout is not None
    deadline = time.monotonic() + 600
    for line in first.stdout:
        if "step 2/" in line or time.monotonic() > deadline:
            break
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    _finished_stages_are_intact(workdir)

    # 2. The rerun completes every stage.
    rerun = _demo(workdir, env)
    output, _ = rerun.communicate(timeout=1200)
    assert rerun.returncode == 0, output[-3000:]
    summary = json.loads((workdir / "demo-summary.json").read_text())
    assert summary["egress_attempts"] == 0
    assert "outbound attempts: 0" in output
    lineage = json.loads((workdir / "manifest.json").read_text())
    assert set(STAGES) <= set(lineage["stages"])
    _finished_stages_are_intact(workdir)
    assert Path(summary["served_model"]).is_file()

    # 3. The audit ledger is intact, and no planted PHI reached any artifact, log or ledger.
    verify = subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "verify", str(home / "ledger" / "deid.jsonl")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # Lineage: the model card cites the head of that very ledger.
    from deid.ledger.verify import ledger_head

    card = (workdir / "evaluate" / "model-card.md").read_text()
    assert f"de-identification ledger head: `{ledger_head(home / 'ledger' / 'deid.jsonl')}`" in card
    assert any(needle in (samples_dir() / "notes" / "nursing-note.txt").read_text() for needle in CANARIES)
    assert _files_containing(workdir, CANARIES) == []
    assert _files_containing(home, CANARIES) == []
    assert not any(needle.lower() in output.lower() for needle in CANARIES)

    # 4. A second run with nothing changed skips every stage.
    again = _demo(workdir, env)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output[-3000:]
    assert output.count("unchanged, skipped") == len(STAGES)
