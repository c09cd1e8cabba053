"""Tiny random checkpoints of every base-model family the appliance exports, made offline.

Each checkpoint is what ``AutoModelForCausalLM.from_config`` gives for a small config of
that family, with the family's real quirks switched on (biases, q/k norms, soft-capping,
sliding windows shorter than the probes, fused projections, rope scaling whose original
context is shorter than the probes). A wide ``initializer_range`` spreads the logits so
that top-1 agreement is a sharp test. Tokenizers are trained here: byte-level BPE with
``tokenizers``, or a SentencePiece BPE model with byte fallback (Llama-2 / Mistral style).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from tests.support.tiny_model import CHATML_TEMPLATE, CORPUS, build_tokenizer

# Forty-eight positions and more: every probe reaches past a rope-scaled model's original context.
LONG_TEXT = (
    "Assessment: the patient presents with a productive cough, fever of 38.4 C and crackles at the right "
    "base. Chest radiograph shows a right lower lobe consolidation. Plan: start oral amoxicillin 500 mg, "
    "encourage fluids, review in 48 hours. Blood pressure 128/84, heart rate 72; wheezing and chest tightness."
)

SPM_CORPUS = [
    *CORPUS,
    "Hypertension is confirmed by repeated measurements above 140/90 mmHg.",
    "Glycated haemoglobin is checked every three months until stable.",
    "Sutures are to be removed in ten days; return if redness appears.",
    "Chest radiograph shows a right lower lobe consolidation.",
]

# name -> (model_type, extra config); "spm-" names get a SentencePiece tokenizer.
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("llama", {"tie_word_embeddings": True}),
    "llama3-rope": (
        "llama",
        {
            "max_position_embeddings": 256,
            "rope_parameters": {
                "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
            },
        },
    ),
    "llama-linear-rope": (
        "llama",
        {"rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}},
    ),
    "qwen2-yarn-rope": (
        "qwen2",
        {
            "rope_parameters": {
                "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 16,
            },
            "max_position_embeddings": 64,
        },
    ),
    "mistral": ("mistral", {"sliding_window": 4096}),
    "qwen2": ("qwen2", {"tie_word_embeddings": False}),
    "qwen3": ("qwen3", {"head_dim": 32, "tie_word_embeddings": True}),
    "gemma2": (
        "gemma2",
        {"head_dim": 32, "query_pre_attn_scalar": 256, "sliding_window": 12, "hidden_activation": "gelu_pytorch_tanh"},
    ),
    "gemma3": (
        "gemma3_text",
        {
            "head_dim": 32, "sliding_window": 12, "num_hidden_layers": 3,  # query_pre_attn_scalar: default 256
            "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
            "rope_parameters": {
                "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0, "factor": 8.0},
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
        },
    ),
    "phi3": ("phi3", {"tie_word_embeddings": False}),
    "spm-llama": ("llama", {"tie_word_embeddings": False}),
    "spm-mistral": ("mistral", {"sliding_window": None}),
}

BASE_SHAPES: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "initializer_range": 0.2,
}


def build_spm_tokenizer(directory: Path, *, control: tuple[str, ...] = ()) -> Any:
    """A Llama-2 style SentencePiece BPE model (byte fallback, dummy prefix) saved with its fast twin.

    ``control`` pieces become special tokens on both sides, as Mistral v0.3's ``[INST]`` are.
    """
    import json

    import sentencepiece as spm
    from transformers import AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SPM_CORPUS * 8),
        model_writer=model,
        model_type="bpe",
        vocab_size=420,
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        control_symbols=list(control),
        hard_vocab_limit=False,
        split_digits=True,
        minloglevel=2,
    )
    (directory / "tokenizer.model").write_bytes(model.getvalue())
    settings = {
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "legacy": True,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(settings))
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if control:
        tokenizer.add_tokens(list(control), special_tokens=True)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(directory)
    return tokenizer


def _randomize_extras(model: Any) -> None:
    """Give biases and norm weights random values, so a converter that drops or misreads them shows."""
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias") or "norm" in name:
                parameter.normal_(0.0, 0.3) if name.endswith(".bias") else parameter.uniform_(0.6, 1.4)


def build_checkpoint(kind: str, directory: Path, seed: int = 0) -> Path:
    """Write the tiny ``kind`` checkpoint (weights, config, tokenizer) into ``directory``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, extra = KINDS[kind]
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "spm-mistral":
        tokenizer = build_spm_tokenizer(directory, control=("[INST]", "[/INST]"))
    elif kind.startswith("spm-"):
        tokenizer = build_spm_tokenizer(directory)
    else:
        tokenizer = build_tokenizer(directory)
    shapes = {**BASE_SHAPES, **extra}
    if model_type == "qwen2":
        shapes.setdefault("use_sliding_window", False)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shapes,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _randomize_extras(model)
    model.save_pretrained(directory)
    return directory
