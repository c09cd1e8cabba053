"""``appliance export`` and ``appliance eval`` as a script runs them: real subprocesses on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.appliance.export.lora_support import make_lora_adapter


def appliance(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "APPLIANCE_HOME": str(home), **(env or {})}
    environment.pop("APPLIANCE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], capture_output=True, text=True, env=environment, timeout=300
    )


def test_export_then_eval_from_the_command_line(tiny_hf_model: Path, tmp_path: Path) -> None:
    adapter = make_lora_adapter(tiny_hf_model, tmp_path / "adapter")
    work = tmp_path / "work"
    done = appliance(
        "export", "--base-model", str(tiny_hf_model), "--adapter", str(adapter), "--workdir", str(work),
        "--quant", "q8_0", home=tmp_path / "home", env={"APPLIANCE_EXPORT__THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "exported: model-f32.gguf" in done.stderr and "Q8_0" in done.stderr
    assert (work / "export" / "model-Q8_0.gguf").is_file() and (work / "export" / "adapter.gguf").is_file()

    done = appliance(
        "eval", "--workdir", str(work), "--model", f"base={tiny_hf_model}",
        "--model", f"fine-tuned={work / 'export' / 'model-Q8_0.gguf'}", "--pubmedqa-limit", "2", "--few-shot", "0", "--mmlu-limit", "6",
        home=tmp_path / "home",
        env={"APPLIANCE_EVAL__MEDQUAD_LIMIT": "1", "APPLIANCE_EVAL__CONTEXT_LENGTH": "512", "APPLIANCE_EVAL__THREADS": "1",
             "APPLIANCE_EVAL__PUBMEDQA_CONTEXT_CHARS": "150", "APPLIANCE_EVAL__ANSWER_MAX_TOKENS": "4"},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((work / "evaluate" / "report.json").read_text())
    assert set(report["models"]) == {"base", "fine-tuned"}
    card = (work / "evaluate" / "model-card.md").read_text()
    assert report["model_sha256"]["fine-tuned"] in card and "merged model `merged/model.safetensors`" in card


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    done = appliance("export", "--adapter", str(tmp_path / "missing"), "--workdir", str(tmp_path), home=tmp_path)
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        f"error: adapter folder not found: {tmp_path / 'missing'} (run 'appliance train' or pass --no-adapter)"
    ]
    done = appliance("export", "--no-adapter", "--quant", "Q9_Z", "--workdir", str(tmp_path), home=tmp_path)
    assert done.returncode == 2 and "unknown quantization type" in done.stderr
    done = appliance("eval", "--workdir", str(tmp_path / "empty"), home=tmp_path)
    assert done.returncode == 3 and "run 'appliance export' first" in done.stderr
    done = appliance("eval", "review-sheet", "--out", str(tmp_path / "sheet"), "--workdir", str(tmp_path / "empty"), home=tmp_path)
    assert done.returncode == 3 and "no rubric review in" in done.stderr and "Traceback" not in done.stderr
    done = appliance("eval", "--workdir", str(tmp_path / "empty"), "--mmlu-limit", "-1", home=tmp_path)
    assert done.returncode == 64 and "--mmlu-limit" in done.stderr and "Traceback" not in done.stderr
