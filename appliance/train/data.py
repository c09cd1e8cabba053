"""Tokenize a built dataset, mask the loss to answers, and pack or length-group batches.

Batch order is a pure function of (seed, epoch), so a resumed run needs only its position
(epoch, micro-batch index) to see exactly the batches the interrupted run would have seen.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from appliance.train.config import Overlong, TrainConfig, TrainMode
from deid.errors import InputError

IGNORE = -100


@dataclass
class Sequence:
    input_ids: list[int]
    labels: list[int]
    splittable: bool  # plain text may straddle packed windows; a chat turn may not
    real_length: int | None = None  # tokens before trailing padding; None = all

    @property
    def attended(self) -> int:
        return len(self.input_ids) if self.real_length is None else self.real_length


def read_examples(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"dataset file not found: {path}")
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            examples.append(json.loads(line))
        except ValueError:
            raise InputError(f"malformed JSON in {path} at line {number}") from None
    return examples


def resolve_mode(mode: TrainMode, examples: list[dict[str, Any]]) -> TrainMode:
    if mode is not TrainMode.auto:
        return mode
    return TrainMode.sft if any(e.get("kind") == "chat" for e in examples) else TrainMode.pretrain


def _render(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def chat_sequence(tokenizer: Any, messages: list[dict[str, str]], *, mask_prompt: bool) -> Sequence:
    """Token ids of a conversation; labels only on assistant turns when ``mask_prompt``.

    Each assistant turn's tokens are found by rendering the conversation up to the turn
    (with the generation prompt) and through it, which works for any template whose
    rendering of a prefix is a prefix of the whole (ChatML, Llama, Mistral all are).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template; train chat data with mode=pretrain")
    full = _ids(tokenizer, _render(tokenizer, messages, generation_prompt=False))
    if not mask_prompt:
        return Sequence(full, list(full), splittable=False)
    labels = [IGNORE] * len(full)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_ids(tokenizer, _render(tokenizer, messages[:index], generation_prompt=True)))
        end = len(_ids(tokenizer, _render(tokenizer, messages[: index + 1], generation_prompt=False)))
        labels[start:end] = full[start:end]
    return Sequence(full, labels, splittable=False)


def text_sequence(tokenizer: Any, text: str) -> Sequence:
    ids = _ids(tokenizer, text)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return Sequence(ids, list(ids), splittable=True)


def tokenize(examples: list[dict[str, Any]], tokenizer: Any, config: TrainConfig, mode: TrainMode) -> list[Sequence]:
    sequences: list[Sequence] = []
    overlong: list[int] = []
    for example in examples:
        if example.get("kind") == "chat":
            sequence = chat_sequence(tokenizer, example["messages"], mask_prompt=mode is not TrainMode.pretrain)
        elif isinstance(example.get("text"), str):
            sequence = text_sequence(tokenizer, example["text"])
        else:
            raise InputError("dataset example without text or messages (was it built by 'appliance dataset build'?)")
        if not sequence.splittable and len(sequence.input_ids) > config.max_seq_length:
            overlong.append(len(sequence.input_ids))
            if config.overlong is Overlong.drop:
                continue
            if config.overlong is Overlong.truncate:
                sequence = Sequence(sequence.input_ids[: config.max_seq_length],
                                    sequence.labels[: config.max_seq_length], splittable=False)
        if any(label != IGNORE for label in sequence.labels):
            sequences.append(sequence)
    if overlong and config.overlong is Overlong.error:
        raise InputError(
            f"{len(overlong)} examples are longer than the context (longest {max(overlong)} tokens > "
            f"max_seq_length {config.max_seq_length}); rebuild the dataset with a smaller "
            "dataset.context_length, or set train.overlong to 'truncate' or 'drop'"
        )
    return sequences


def pack(sequences: list[Sequence], length: int, pad_id: int) -> list[Sequence]:
    """Fill windows of ``length`` tokens: text flows across windows, chat turns stay whole.

    Texts in one window are one causal stream separated by their end-of-text tokens, as in
    pretraining. Restarting positions per text would isolate them, but turns the causal
    kernel into a masked one that is several times slower on a CPU.
    """
    windows: list[Sequence] = []
    ids: list[int] = []
    labels: list[int] = []

    def close() -> None:
        nonlocal ids, labels
        if ids:
            padding = length - len(ids)
            windows.append(Sequence(ids + [pad_id] * padding, labels + [IGNORE] * padding, False, len(ids)))
        ids, labels = [], []

    for sequence in sequences:
        seq_ids, seq_labels = sequence.input_ids, sequence.labels
        if not sequence.splittable and len(ids) + len(seq_ids) > length:
            close()
        while seq_ids:
            room = length - len(ids)
            ids += seq_ids[:room]
            labels += seq_labels[:room]
            seq_ids, seq_labels = seq_ids[room:], seq_labels[room:]
            if len(ids) == length:
                close()
    close()
    return windows


def collate(sequences: list[Sequence], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids and labels, and no attention mask.

    Padding sits after every real token, so causal attention already keeps real tokens from
    seeing it, and its labels are ignored: a mask would only cost the fast causal kernel.
    """
    width = max(len(s.input_ids) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        n = len(sequence.input_ids)
        input_ids[row, :n] = torch.tensor(sequence.input_ids)
        labels[row, :n] = torch.tensor(sequence.labels)
    return {"input_ids": input_ids, "labels": labels}


def real_tokens(sequences: list[Sequence]) -> int:
    """Tokens that are not padding: what a throughput figure counts."""
    return sum(s.attended for s in sequences)


def batch_items(sequences: list[Sequence], length: int, pad_id: int) -> list[Sequence]:
    """What one of a batch's ``batch_size`` places holds when packing: a whole chat, or a full window of text.

    Plain text flows into windows as one stream (a note split across windows costs nothing);
    each chat keeps its own row, and batching chats of similar length (``group_by_length``)
    keeps the padding small without laying chats end to end under a masked kernel.
    """
    text = [s for s in sequences if s.splittable]
    return pack(text, length, pad_id) + [s for s in sequences if not s.splittable]


class BatchPlan:
    """The micro-batches of each epoch for one process, deterministic in (seed, epoch)."""

    def __init__(self, sequences: list[Sequence], config: TrainConfig, *, pad_id: int, rank: int, world: int) -> None:
        self.config = config
        self.pad_id = pad_id
        self.rank = rank
        self.world = world
        self.items = batch_items(sequences, config.max_seq_length, pad_id) if config.packing else sequences
        per_epoch = len(self.items) // (config.batch_size * world)
        if per_epoch == 0:
            raise InputError(
                f"the training set is too small: {len(self.items)} sequences for batch size "
                f"{config.batch_size} on {world} process(es)"
            )
        self.batches_per_epoch = per_epoch

    def epoch(self, epoch: int) -> list[list[int]]:
        """Index lists of this process's micro-batches in ``epoch``."""
        rng = random.Random(self.config.seed * 1_000_003 + epoch)
        order = list(range(len(self.items)))
        rng.shuffle(order)
        size = self.config.batch_size
        if self.config.group_by_length:
            window = size * self.world * 32
            grouped: list[int] = []
            for start in range(0, len(order), window):
                grouped += sorted(order[start : start + window], key=lambda i: len(self.items[i].input_ids))
            order = grouped
        batches = [order[i : i + size] for i in range(0, self.batches_per_epoch * size * self.world, size)]
        rounds = [batches[i : i + self.world] for i in range(0, len(batches), self.world)]
        rng.shuffle(rounds)
        return [round_[self.rank] for round_ in rounds]

    def batch(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return collate([self.items[i] for i in indices], self.pad_id)

    def tokens(self, indices: list[int]) -> int:
        return real_tokens([self.items[i] for i in indices])


def evaluation_batches(sequences: list[Sequence], config: TrainConfig, *, pad_id: int, rank: int, world: int) -> list[dict[str, torch.Tensor]]:
    items = batch_items(sequences, config.max_seq_length, pad_id) if config.packing else sequences
    mine = sorted(items[rank::world], key=lambda s: len(s.input_ids))  # similar lengths: little padding
    batches = [collate(mine[i : i + config.batch_size], pad_id) for i in range(0, len(mine), config.batch_size)]
    return batches[: config.max_eval_batches] if config.max_eval_batches else batches
