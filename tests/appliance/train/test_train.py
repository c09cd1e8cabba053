"""LoRA training on the tiny llama: masking, packing, outputs, exact resume, DDP, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from appliance.config import load_settings
from appliance.train.base_model import default_target_modules, load_base_model
from appliance.train.config import TrainConfig
from appliance.train.data import IGNORE, chat_sequence, pack, text_sequence
from appliance.train.stage import train_stage
from deid.errors import InputError, ModelError

TEXTS = [
    "The patient was admitted with chest pain and shortness of breath.",
    "Metformin 500 mg twice daily was continued for type 2 diabetes.",
    "Blood pressure 128/84, heart rate 72, temperature 37.1 C.",
    "Hypertension is treated with lifestyle changes and medication.",
    "The wound was cleaned and dressed; follow up in two weeks.",
]
QA = [
    ("What are the symptoms of asthma?", "Wheezing, cough and chest tightness."),
    ("Is aspirin recommended?", "Yes, for secondary prevention."),
    ("What is the plan?", "Start amoxicillin."),
    ("How is hypertension treated?", "With lifestyle changes and medication."),
]


def _chat(question: str, answer: str, group: str) -> dict[str, Any]:
    return {"recipe": "qa", "group": group, "kind": "chat",
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def tokenizer(tiny_hf_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_hf_model), local_files_only=True)


def _settings(**train: Any):
    base = {"max_steps": 4, "batch_size": 2, "max_seq_length": 64, "checkpoint_interval": 2, "lora_dropout": 0.1,
            "eval_interval": 2, "gradient_accumulation_steps": 2, "warmup_steps": 1}
    return load_settings(train={**base, **train})


def test_sft_labels_cover_only_the_answer(tokenizer: Any) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is aspirin recommended?"},
                {"role": "assistant", "content": "Yes, for secondary prevention."}]
    sequence = chat_sequence(tokenizer, messages, mask_prompt=True)
    learned = [t for t, label in zip(sequence.input_ids, sequence.labels, strict=True) if label != IGNORE]
    assert tokenizer.decode(learned) == "Yes, for secondary prevention.<|im_end|>\n"
    first = sequence.labels.index(next(label for label in sequence.labels if label != IGNORE))
    assert all(label == IGNORE for label in sequence.labels[:first])
    unmasked = chat_sequence(tokenizer, messages, mask_prompt=False)
    assert unmasked.labels == unmasked.input_ids


def test_packing_fills_windows_and_keeps_chats_whole(tokenizer: Any) -> None:
    texts = [text_sequence(tokenizer, t) for t in TEXTS]
    chats = [chat_sequence(tokenizer, _chat(q, a, "g")["messages"], mask_prompt=True) for q, a in QA]
    windows = pack(texts + chats, 48, tokenizer.pad_token_id)
    assert {len(w.input_ids) for w in windows} == {48}
    stream = [t for s in texts for t in s.input_ids]
    packed_text = [t for w in windows[: len(stream) // 48] for t in w.input_ids]
    assert packed_text == stream[: len(packed_text)]  # text flows across windows, unpadded
    for chat in chats:
        assert any(
            w.input_ids[i : i + len(chat.input_ids)] == chat.input_ids
            for w in windows for i in range(len(w.input_ids) - len(chat.input_ids) + 1)
        )


def test_default_target_modules() -> None:
    assert "q_proj" in default_target_modules("qwen2") and "down_proj" in default_target_modules("mistral")
    assert default_target_modules("something-new") == ["all-linear"]


def test_train_stage_outputs_a_working_adapter(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    rows: list[dict[str, Any]] = []
    result = train_stage(_settings(), dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path,
                         progress=rows.append)
    summary = json.loads(result.path("summary.json").read_text())
    assert summary["steps"] == 4 and summary["mode"] == "sft" and summary["tokens_per_second"] > 0
    metrics = [json.loads(line) for line in result.path("metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics if r["kind"] == "train"] == [1, 2, 3, 4]
    assert [r["step"] for r in metrics if r["kind"] == "eval"] == [2, 4]
    assert metrics[0]["lr"] < _settings().train.learning_rate or metrics[0]["lr"] > 0
    assert result.path("loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(r["kind"] == "checkpoint" for r in rows)
    from peft import PeftModel

    base = load_base_model(tiny_hf_model).model
    ids = torch.tensor([[5, 6, 7, 8]])
    before = base(ids).logits.detach()
    tuned = PeftModel.from_pretrained(base, str(result.path("adapter")))
    assert not torch.allclose(tuned(ids).logits, before)
    again = train_stage(_settings(), dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path)
    assert again.skipped


def _metrics(result: Any) -> list[tuple[str, int, float | None]]:
    rows = [json.loads(line) for line in result.path("metrics.jsonl").read_text().splitlines()]
    return [(r["kind"], r["step"], r.get("loss", r.get("val_loss"))) for r in rows]


class Killed(Exception):
    """Stands in for SIGKILL: raised from the progress hook right after a checkpoint."""


def test_killed_run_resumes_exactly(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    settings = _settings(max_steps=6, eval_interval=0)
    straight = train_stage(settings, dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path / "a")

    def kill_at_step_2(row: dict[str, Any]) -> None:
        if row["kind"] == "checkpoint" and row["step"] == 2:
            raise Killed

    with pytest.raises(Killed):
        train_stage(settings, dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path / "b",
                    progress=kill_at_step_2)
    assert not (tmp_path / "b" / "train").exists()
    resumed = train_stage(settings, dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path / "b")
    assert resumed.manifest.details["resumed_from_step"] == 2
    expected = load_file(str(straight.path("adapter/adapter_model.safetensors")))
    got = load_file(str(resumed.path("adapter/adapter_model.safetensors")))
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert _metrics(straight) == _metrics(resumed)


def test_early_stopping_keeps_the_best_adapter(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    settings = _settings(max_steps=8, eval_interval=1, early_stopping_patience=1, early_stopping_min_delta=10.0)
    result = train_stage(settings, dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path)
    details = result.manifest.details
    assert details["stopped_early"] and details["steps"] == 2 and details["adapter_is_best_checkpoint"]


def test_errors_are_clear(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        train_stage(_settings(), dataset_dir=dataset_dir, base_model=tmp_path / "missing", workdir=tmp_path / "w")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.jsonl").write_text("")
    with pytest.raises(InputError, match="training set is empty"):
        train_stage(_settings(), dataset_dir=empty, base_model=tiny_hf_model, workdir=tmp_path / "w")
    with pytest.raises(InputError, match="run 'appliance dataset build' first"):
        train_stage(_settings(), dataset_dir=tmp_path / "nowhere", base_model=tiny_hf_model, workdir=tmp_path / "w")
    long = tmp_path / "long"
    long.mkdir()
    _write(long / "train.jsonl", [_chat("Explain. " * 40, "Answer.", "g")] * 4)
    with pytest.raises(InputError, match="longer than the context"):
        train_stage(_settings(), dataset_dir=long, base_model=tiny_hf_model, workdir=tmp_path / "w")
    from tests.support.tiny_model import build_tokenizer

    other = build_tokenizer(tmp_path / "other-tokenizer", vocab_size=len(TrainConfig.model_fields) + 600)
    assert len(other) > 400
    with pytest.raises(ModelError, match="tokenizer does not match the model"):
        train_stage(_settings(tokenizer=str(tmp_path / "other-tokenizer")), dataset_dir=dataset_dir,
                    base_model=tiny_hf_model, workdir=tmp_path / "w")


def test_cli_train_refuses_a_missing_model_in_one_line(tmp_path: Path, dataset_dir: Path) -> None:
    env = {**os.environ, "APPLIANCE_HOME": str(tmp_path / "home")}
    env.pop("APPLIANCE_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "train", "--dataset", str(dataset_dir), "--base-model",
         str(tmp_path / "absent.gguf"), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == ModelError.exit_code
    assert done.stderr.strip().splitlines()[-1].startswith("error: base model path does not exist")
    assert "Traceback" not in done.stderr


def test_two_process_ddp_on_cpu(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    env = {**os.environ, "APPLIANCE_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1",
           "GLOO_SOCKET_IFNAME": "lo", "APPLIANCE_TRAIN__BATCH_SIZE": "2", "APPLIANCE_TRAIN__MAX_SEQ_LENGTH": "64",
           "APPLIANCE_TRAIN__EVAL_INTERVAL": "2", "APPLIANCE_TRAIN__CPU_THREADS": "1"}
    env.pop("APPLIANCE_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
         "-m", "appliance", "train", "--dataset", str(dataset_dir), "--base-model", str(tiny_hf_model),
         "--workdir", str(tmp_path / "work"), "--max-steps", "2"],
        capture_output=True, text=True, env=env, timeout=170,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "work" / "train" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    metrics = [json.loads(line) for line in (tmp_path / "work" / "train" / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in metrics if r["kind"] == "train")
    assert 2 * 64 < first["tokens"] <= 2 * 2 * 64  # both ranks' batches are counted
    assert any(r["kind"] == "eval" for r in metrics)
    assert (tmp_path / "work" / "train" / "adapter" / "adapter_model.safetensors").is_file()
