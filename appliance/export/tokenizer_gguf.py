"""Carry a Hugging Face tokenizer (byte-level BPE or SentencePiece) into GGUF metadata llama.cpp understands.

SentencePiece vocabularies go in as ``tokenizer.ggml.model = llama``: pieces with their
scores (llama.cpp merges by score) and types (byte-fallback ``<0xNN>`` pieces are BYTE),
and the dummy-prefix space the Hugging Face tokenizer is observed to add.

llama.cpp does not read ``tokenizer.json``'s pre-tokenizer; it picks a hard-coded split
regex by the name in ``tokenizer.ggml.pre``. We recognise the common layouts from the
pre-tokenizer's structure (or take the name a source GGUF already carried) and fall back to
``default``; the parity gate then compares tokenizations, so a wrong guess cannot pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import gguf

from deid.errors import ModelError

_LLAMA3_DIGITS = "\\p{N}{1,3}"
_QWEN2_LETTERS = "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"


class VocabKind(StrEnum):
    """``tokenizer.ggml.model``: which of llama.cpp's tokenizers runs the vocabulary."""

    BPE = "gpt2"  # byte-level BPE with merges and a named pre-tokenizer regex
    SPM = "llama"  # SentencePiece: pieces, scores, byte-fallback tokens, a dummy-prefix space


@dataclass(frozen=True)
class TokenizerMetadata:
    kind: VocabKind
    tokens: list[str]
    token_types: list[int]
    scores: list[float] | None
    pre_tokenizer: str
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool


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


@dataclass(frozen=True)
class _Behaviour:
    """What the tokenizer transformers loads really does, which is what llama.cpp must copy."""

    pipeline: dict[str, Any]
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool


def _observed_behaviour(model_dir: Path) -> _Behaviour:
    """Ask the tokenizer itself: post-processors and normalizers, not config flags, decide what is added.

    transformers may rebuild the pipeline from its tokenizer class (a qwen2 checkpoint gets
    Qwen's split regex whatever ``tokenizer.json`` says), so the pipeline is read back from
    the loaded tokenizer, not from the file. A SentencePiece tokenizer that prefixes a space
    turns "a" into a piece starting with U+2581; llama.cpp's ``add_space_prefix`` does the same.
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        pipeline = json.loads(tokenizer.backend_tokenizer.to_str())
    except (OSError, ValueError, AttributeError) as error:
        raise ModelError(f"cannot load the tokenizer in {model_dir}: {type(error).__name__}") from None
    ids = tokenizer("a")["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    bare = tokenizer.convert_ids_to_tokens(tokenizer("a", add_special_tokens=False)["input_ids"])
    return _Behaviour(
        pipeline=pipeline,
        add_bos=bool(ids) and bos is not None and ids[0] == bos,
        add_eos=bool(ids) and eos is not None and ids[-1] == eos,
        add_space_prefix=bool(bare) and str(bare[0]).startswith("\u2581"),
    )


# SentencePiece ModelProto piece types -> GGUF token types (the numbering differs in name only).
_SPM_TYPES = {
    1: gguf.TokenType.NORMAL,
    2: gguf.TokenType.UNKNOWN,
    3: gguf.TokenType.CONTROL,
    4: gguf.TokenType.USER_DEFINED,
    5: gguf.TokenType.UNUSED,
    6: gguf.TokenType.BYTE,
}


def _fill(
    by_id: dict[int, tuple[str, float, int]], special: dict[int, bool], vocab_size: int
) -> tuple[list[str], list[float], list[int]]:
    """One row per model vocabulary slot; tokens the tokenizer adds on top override the base entry."""
    if by_id and max(by_id) >= vocab_size:
        raise ModelError(f"tokenizer has ids up to {max(by_id)} but the model's vocabulary is {vocab_size}")
    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []
    for index in range(vocab_size):
        text, score, kind = by_id.get(index, (f"[PAD{index}]", 0.0, int(gguf.TokenType.UNUSED)))
        if index in special and kind != gguf.TokenType.UNKNOWN:  # llama.cpp finds <unk> by its type
            kind = int(gguf.TokenType.CONTROL if special[index] else gguf.TokenType.USER_DEFINED)
        tokens.append(text)
        scores.append(score)
        types.append(kind)
    return tokens, scores, types


def _sentencepiece_entries(model_file: Path) -> dict[int, tuple[str, float, int]]:
    """Pieces of a ``tokenizer.model`` with their scores and types."""
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError:
        raise ModelError("reading tokenizer.model needs the protobuf package") from None
    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]  # generated by protobuf at import
    try:
        proto.ParseFromString(model_file.read_bytes())
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError and others for corrupt files
        raise ModelError(f"corrupt SentencePiece model {model_file.name}") from None
    if proto.trainer_spec.model_type not in (1, 2):  # unigram, bpe
        raise ModelError("only unigram or BPE SentencePiece models can be exported")
    return {
        index: (piece.piece, float(piece.score), int(_SPM_TYPES.get(piece.type, gguf.TokenType.NORMAL)))
        for index, piece in enumerate(proto.pieces)
    }


def _byte_fallback_entries(model: dict[str, Any]) -> dict[int, tuple[str, float, int]]:
    """A SentencePiece-style BPE known only from tokenizer.json: earlier pieces merge first."""
    entries: dict[int, tuple[str, float, int]] = {}
    for token, index in model["vocab"].items():
        kind = gguf.TokenType.BYTE if re.fullmatch(r"<0x[0-9A-F]{2}>", token) else gguf.TokenType.NORMAL
        if token == model.get("unk_token"):
            kind = gguf.TokenType.UNKNOWN
        entries[int(index)] = (token, -float(index), int(kind))
    return entries


def read_tokenizer(model_dir: Path, vocab_size: int, pre_tokenizer_hint: str | None = None) -> TokenizerMetadata:
    behaviour = _observed_behaviour(model_dir)
    data = behaviour.pipeline
    model = data.get("model", {})
    special = _added_special_flags(model_dir, data)
    added = {
        int(item["id"]): (item["content"], 0.0, int(gguf.TokenType.USER_DEFINED)) for item in data.get("added_tokens", [])
    }
    if model.get("type") == "BPE" and not model.get("byte_fallback"):
        by_id = {int(index): (token, 0.0, int(gguf.TokenType.NORMAL)) for token, index in model["vocab"].items()}
        tokens, _scores, types = _fill({**by_id, **added}, special, vocab_size)
        return TokenizerMetadata(
            kind=VocabKind.BPE,
            tokens=tokens,
            token_types=types,
            scores=None,
            pre_tokenizer=pre_tokenizer_hint or pre_tokenizer_name(data),
            add_bos=behaviour.add_bos,
            add_eos=behaviour.add_eos,
            add_space_prefix=False,
        )
    spm_file = model_dir / "tokenizer.model"
    if spm_file.is_file():
        by_id = _sentencepiece_entries(spm_file)
    elif model.get("type") == "BPE":
        by_id = _byte_fallback_entries(model)
    else:
        raise ModelError(f"tokenizer type {model.get('type')!r} cannot be exported (byte-level BPE or SentencePiece)")
    # Added tokens keep the base piece's score and type; _fill then marks them special or user-defined.
    for index, entry in added.items():
        _text, score, kind = by_id.get(index, entry)
        by_id[index] = (entry[0], score, kind)
    tokens, scores, types = _fill(by_id, special, vocab_size)
    return TokenizerMetadata(
        kind=VocabKind.SPM,
        tokens=tokens,
        token_types=types,
        scores=scores,
        pre_tokenizer="default",
        add_bos=behaviour.add_bos,
        add_eos=behaviour.add_eos,
        add_space_prefix=behaviour.add_space_prefix,
    )


def write_tokenizer(writer: gguf.GGUFWriter, model_dir: Path, meta: TokenizerMetadata) -> None:
    writer.add_tokenizer_model(meta.kind.value)
    writer.add_tokenizer_pre(meta.pre_tokenizer)
    writer.add_token_list(meta.tokens)
    writer.add_token_types(meta.token_types)
    if meta.scores is not None:
        writer.add_token_scores(meta.scores)
    bpe = meta.kind is VocabKind.BPE
    special = gguf.SpecialVocab(model_dir, load_merges=bpe, n_vocab=len(meta.tokens))
    if bpe and not special.merges:
        raise ModelError(f"the tokenizer in {model_dir} has no BPE merges")
    if not bpe:
        writer.add_add_space_prefix(meta.add_space_prefix)
    # add_bos/add_eos are written explicitly below from observed behaviour, never left to defaults.
    special.add_special_token.clear()
    special.add_to_gguf(writer, quiet=True)
    writer.add_add_bos_token(meta.add_bos)
    writer.add_add_eos_token(meta.add_eos)
