"""Carry a Hugging Face byte-level BPE tokenizer into GGUF metadata llama.cpp understands.

llama.cpp does not read ``tokenizer.json``'s pre-tokenizer; it picks a hard-coded split
regex by the name in ``tokenizer.ggml.pre``. We recognise the common layouts from the
pre-tokenizer's structure (or take the name a source GGUF already carried) and fall back to
``default``; the parity gate then compares tokenizations, so a wrong guess cannot pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from appliance.errors import ModelError

_LLAMA3_DIGITS = "\\p{N}{1,3}"
_QWEN2_LETTERS = "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"


@dataclass(frozen=True)
class TokenizerMetadata:
    tokens: list[str]
    token_types: list[int]
    pre_tokenizer: str
    add_bos: bool
    add_eos: bool


def _split_patterns(pre: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if pre.get("type") == "Split":
        pattern = pre.get("pattern", {})
        found.append(str(pattern.get("Regex", pattern.get("String", ""))))
    for child in pre.get("pretokenizers", []) or []:
        found.extend(_split_patterns(child))
    return found


def pre_tokenizer_name(tokenizer_json: dict[str, Any]) -> str:
    """A ``tokenizer.ggml.pre`` value llama.cpp knows, chosen from the pre-tokenizer layout."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    kinds = [pre.get("type")] + [child.get("type") for child in pre.get("pretokenizers", []) or []]
    patterns = "".join(_split_patterns(pre))
    if _LLAMA3_DIGITS in patterns:
        return "llama-bpe"
    if _QWEN2_LETTERS in patterns:
        return "qwen2"
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"
    if kinds[:1] == ["Sequence"] and "Digits" in kinds and "ByteLevel" in kinds:
        digits = next(child for child in pre["pretokenizers"] if child.get("type") == "Digits")
        if digits.get("individual_digits"):
            return "smollm"
    return "default"


def _added_special_flags(model_dir: Path, tokenizer_json: dict[str, Any]) -> dict[int, bool]:
    flags = {int(item["id"]): bool(item.get("special")) for item in tokenizer_json.get("added_tokens", [])}
    config_path = model_dir / "tokenizer_config.json"
    if config_path.is_file():
        decoder = json.loads(config_path.read_text()).get("added_tokens_decoder", {}) or {}
        for key, item in decoder.items():
            flags[int(key)] = bool(item.get("special", flags.get(int(key), False)))
    return flags


def _adds_bos_eos(model_dir: Path) -> tuple[bool, bool]:
    """Ask the tokenizer itself: post-processors, not config flags, decide what gets added."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    ids = tokenizer("a")["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return bool(ids) and bos is not None and ids[0] == bos, bool(ids) and eos is not None and ids[-1] == eos


def read_tokenizer(model_dir: Path, vocab_size: int, pre_tokenizer_hint: str | None = None) -> TokenizerMetadata:
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"no tokenizer.json in {model_dir}; only fast (tokenizers) BPE tokenizers are supported")
    data = json.loads(path.read_text())
    model = data.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ModelError("only byte-level BPE tokenizers are supported for GGUF export (not SentencePiece)")
    by_id: dict[int, str] = {int(index): token for token, index in model["vocab"].items()}
    for item in data.get("added_tokens", []):
        by_id[int(item["id"])] = item["content"]
    if max(by_id) >= vocab_size:
        raise ModelError(f"tokenizer has ids up to {max(by_id)} but the model's vocabulary is {vocab_size}")
    special = _added_special_flags(model_dir, data)
    tokens: list[str] = []
    types: list[int] = []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in special:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.CONTROL if special[index] else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    add_bos, add_eos = _adds_bos_eos(model_dir)
    return TokenizerMetadata(
        tokens=tokens,
        token_types=[int(kind) for kind in types],
        pre_tokenizer=pre_tokenizer_hint or pre_tokenizer_name(data),
        add_bos=add_bos,
        add_eos=add_eos,
    )


def write_tokenizer(writer: gguf.GGUFWriter, model_dir: Path, meta: TokenizerMetadata) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(meta.pre_tokenizer)
    writer.add_token_list(meta.tokens)
    writer.add_token_types(meta.token_types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(meta.tokens))
    if not special.merges:
        raise ModelError(f"the tokenizer in {model_dir} has no BPE merges")
    # add_bos/add_eos are written explicitly below from observed behaviour, never left to defaults.
    special.add_special_token.clear()
    special.add_to_gguf(writer, quiet=True)
    writer.add_add_bos_token(meta.add_bos)
    writer.add_add_eos_token(meta.add_eos)
