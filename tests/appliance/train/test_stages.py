"""Chained stages (cpt -> sft -> dpo) on the tiny llama: each continues the previous adapter; DPO learns preferences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from appliance.cli.export import _last_trained_adapter
from appliance.config import load_settings
from appliance.train.config import Method
from appliance.train.dpo import read_pairs
from appliance.train.loss import CausalLMLoss, token_losses
from appliance.train.stage import run_recipe, train_stage
from deid.errors import InputError

NOTES = ["The wound was cleaned and dressed.", "Blood pressure was stable overnight.",
         "Metformin was continued at the same dose.", "The patient walked the hallway twice."]
QUESTIONS = ["What is asthma?", "How is hypertension treated?", "What does metformin do?", "Is aspirin safe?",
             "What causes anemia?", "How is a fever managed?", "What is a stroke?", "What is insulin for?",
             "How is pain assessed?", "What is sepsis?"]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _chat(question: str, answer: str, group: str, recipe: str = "qa") -> dict[str, Any]:
    return {"recipe": recipe, "group": group, "kind": "chat",
            "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dataset")
    rows = [{"recipe": "pretrain", "group": f"n{i}", "kind": "text", "text": t} for i, t in enumerate(NOTES * 3)]
    rows += [_chat(q, "It is treated with rest and care.", f"q{i}") for i, q in enumerate(QUESTIONS)]
    rows += [_chat("What is the capital of France?", "Paris.", "r0", recipe="replay")]
    _write(directory / "train.jsonl", rows)
    return directory


def _settings(**train: Any) -> Any:
    base = {"max_steps": 2, "batch_size": 2, "max_seq_length": 64, "checkpoint_interval": 2, "eval_interval": 0,
            "lora_dropout": 0.0, "warmup_steps": 0, "recipe": ["cpt", "sft"]}
    return load_settings(train={**base, **train})


def test_fused_loss_matches_the_models_own_loss_and_gradients(tiny_hf_model: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from appliance.train.base_model import load_base_model

    model = get_peft_model(load_base_model(tiny_hf_model).model,
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_()
    ids = torch.randint(5, 300, (2, 24))
    labels = ids.clone()
    labels[:, :9] = -100
    losses, rows = CausalLMLoss(model, chunk=7)(input_ids=ids, labels=labels)
    assert rows.tolist() == [0] * 15 + [1] * 15
    losses.mean().backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    reference = model(input_ids=ids, labels=labels).loss
    reference.backward()
    assert torch.allclose(losses.mean(), reference, atol=1e-5)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert torch.allclose(parameter.grad, ours[name], atol=1e-5), name
    head = torch.nn.Linear(8, 11, bias=False)
    head.weight.requires_grad_(False)
    hidden = torch.randn(5, 8, requires_grad=True)
    targets = torch.tensor([0, 3, 10, 2, 2])
    expected = torch.nn.functional.cross_entropy(head(hidden), targets, reduction="none")
    assert torch.allclose(token_losses(hidden, head, targets, chunk=2), expected, atol=1e-6)


def test_recipe_chains_cpt_into_sft(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    cpt, sft = run_recipe(_settings(), dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path)
    assert cpt.directory.name == "train-cpt" and sft.directory.name == "train"
    assert cpt.manifest.details["mode"] == "pretrain" and cpt.manifest.details["started_from"] == "base"
    assert sft.manifest.details["mode"] == "sft"
    assert Path(sft.manifest.details["started_from"]) == cpt.path("adapter")
    assert "start_adapter" in sft.manifest.inputs
    # cpt learns only the notes (12 texts packed), sft only the 11 chats (replay included)
    assert cpt.manifest.details["train_sequences"] == 12 and sft.manifest.details["train_sequences"] == 11
    first = load_file(str(cpt.path("adapter/adapter_model.safetensors")))
    second = load_file(str(sft.path("adapter/adapter_model.safetensors")))
    assert first.keys() == second.keys()
    assert any(not torch.equal(first[k], second[k]) for k in first)
    # a later `--method sft` on its own finds the cpt adapter in the work directory and keeps the result
    again = train_stage(_settings(recipe=[]), dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path,
                        method=Method.sft)
    assert again.skipped


def test_replay_file_replaces_the_datasets_replay(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    replay = tmp_path / "general.jsonl"
    _write(replay, [{"question": f"What is {i} plus {i}?", "answer": f"{2 * i}."} for i in range(5)])
    result = train_stage(_settings(recipe=[], max_steps=1, replay=str(replay)), dataset_dir=dataset_dir,
                         base_model=tiny_hf_model, workdir=tmp_path / "w", method=Method.sft)
    assert result.manifest.details["replay_file"] == "general.jsonl"
    assert result.manifest.details["train_sequences"] == 11  # 10 chats + 1 replay example, now from the file
    assert "replay" in result.manifest.inputs
    with pytest.raises(InputError, match="replay file not found"):
        train_stage(_settings(recipe=[], replay=str(tmp_path / "absent.jsonl")), dataset_dir=dataset_dir,
                    base_model=tiny_hf_model, workdir=tmp_path / "w", method=Method.sft)


SFT_ANSWER = "It is treated with rest and care."  # what dataset_dir's chats teach


def _pairs(path: Path) -> Path:
    """The answer SFT taught is the rejected one, so the SFT policy starts out preferring it."""
    rows = [{"prompt": q, "chosen": "Rest, fluids and a review by your doctor.", "rejected": SFT_ANSWER}
            for q in QUESTIONS]
    _write(path, rows)
    return path


def test_dpo_on_top_of_sft_raises_preference_accuracy(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    settings = _settings(recipe=["sft", "dpo"], max_steps=6, learning_rate=5e-3, dpo_beta=0.5, batch_size=4,
                         max_seq_length=128, checkpoint_interval=3)
    sft, dpo = run_recipe(settings, dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path,
                          preferences=_pairs(tmp_path / "prefs.jsonl"))
    details = dpo.manifest.details
    assert dpo.directory.name == "train-dpo" and Path(details["started_from"]) == sft.path("adapter")
    assert details["held_out_pairs"] == 2 and details["train_pairs"] == 8
    # the held-out pairs never trained: DPO moved the policy itself from the SFT answer to the chosen one
    assert details["preference_accuracy_before"] == 0.0 and details["preference_accuracy_after"] == 1.0
    assert details["mean_logp_margin_after"] > 0 > details["mean_logp_margin_before"]
    assert details["held_out_dpo_loss_after"] < details["held_out_dpo_loss_before"]
    assert details["mean_reward_margin"] > 0 and details["reward_accuracy_after"] == 1.0
    rows = [json.loads(line) for line in dpo.path("metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert dpo.path("adapter/adapter_model.safetensors").is_file()
    assert _last_trained_adapter(tmp_path) == dpo.path("adapter")  # what 'appliance export' takes by default


def test_dpo_refuses_bad_pairs_by_line(tmp_path: Path, dataset_dir: Path, tiny_hf_model: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "Q", "chosen": "A", "rejected": "B"}\n{"prompt": "Q", "chosen": "A"}\n')
    with pytest.raises(InputError, match="line 2: expected non-empty strings"):
        read_pairs(bad)
    with pytest.raises(InputError, match="needs the preference pairs"):
        train_stage(_settings(recipe=[]), dataset_dir=dataset_dir, base_model=tiny_hf_model, workdir=tmp_path,
                    method=Method.dpo)
    with pytest.raises(InputError, match="recipe has a dpo stage"):
        run_recipe(_settings(recipe=["sft", "dpo"]), dataset_dir=dataset_dir, base_model=tiny_hf_model,
                   workdir=tmp_path)


def test_batches_group_chats_of_similar_length_and_fill_text_windows(tiny_hf_model: Path) -> None:
    from transformers import AutoTokenizer

    from appliance.train.data import BatchPlan, chat_sequence, text_sequence

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_hf_model), local_files_only=True)
    chats = [chat_sequence(tokenizer, _chat(q, "Rest. " * (1 + i % 5), "g")["messages"], mask_prompt=True)
             for i, q in enumerate(QUESTIONS)]
    texts = [text_sequence(tokenizer, t) for t in NOTES * 4]
    config = _settings(batch_size=2, max_seq_length=64).train
    plan = BatchPlan(chats + texts, config, pad_id=tokenizer.pad_token_id, rank=0, world=1)
    windows = [item for item in plan.items if item.attended == 64]
    assert windows and sum(item.attended for item in plan.items) == sum(len(s.input_ids) for s in chats + texts)
    padding = real = 0
    for indices in plan.epoch(0):
        batch = plan.batch(indices)
        assert "attention_mask" not in batch  # right padding under the causal kernel needs no mask
        real += plan.tokens(indices)
        padding += batch["input_ids"].numel() - plan.tokens(indices)
    assert padding < 0.15 * real  # similar lengths share a batch
