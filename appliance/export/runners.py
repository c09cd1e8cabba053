"""One small interface over llama.cpp (GGUF) and transformers (HF directory) models.

Parity checks, perplexity and the evaluation benchmarks all need the same few things:
tokenize, the logits of every position, and greedy continuation. Scoring both back-ends
through the same code is what makes their numbers comparable in one table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from appliance.errors import ModelError
from appliance.models import check_gguf_file


class ModelRunner(Protocol):
    name: str
    context_length: int

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def logits(self, ids: Sequence[int]) -> np.ndarray: ...

    def greedy(self, ids: Sequence[int], max_new_tokens: int) -> list[int]: ...

    def close(self) -> None: ...


def default_threads(threads: int | None) -> int:
    return threads or max(1, min(os.cpu_count() or 1, 8))


class LlamaCppRunner:
    """A GGUF through llama-cpp-python with logits for every position (``logits_all``)."""

    def __init__(
        self,
        path: Path,
        *,
        context_length: int = 512,
        threads: int | None = None,
        lora_path: Path | None = None,
        name: str | None = None,
    ) -> None:
        from llama_cpp import Llama

        check_gguf_file(path)
        self.name = name or path.name
        self.context_length = context_length
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=context_length,
                n_batch=context_length,
                n_threads=default_threads(threads),
                logits_all=True,
                lora_path=str(lora_path) if lora_path else None,
                verbose=False,
            )
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"llama.cpp cannot load {path.name}: {type(error).__name__}") from None
        self.eos_id = int(self._llm.token_eos())

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def _prefill(self, ids: Sequence[int]) -> None:
        """Evaluate ``ids``, reusing the KV cache for the prefix shared with the previous call.

        Few-shot prompts, answer options and canary probes share long prefixes; with
        ``logits_all`` the cached rows of ``scores`` stay valid, so only the new tail is computed.
        """
        cached = self._llm.n_tokens
        limit = min(cached, len(ids) - 1)
        if limit > 0:
            differs = np.nonzero(self._llm.input_ids[:limit] != np.asarray(ids[:limit]))[0]
            common = int(differs[0]) if len(differs) else limit
        else:
            common = 0
        self._llm.n_tokens = common
        self._llm.eval(list(ids[common:]))

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        self._prefill(ids)
        return np.array(self._llm.scores[: len(ids)], dtype=np.float32)

    def greedy(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        self._prefill(ids)
        produced: list[int] = []
        for _ in range(max_new_tokens):
            token = int(np.argmax(self._llm.scores[self._llm.n_tokens - 1]))
            produced.append(token)
            if token == self.eos_id or self._llm.n_tokens >= self.context_length:
                break
            self._llm.eval([token])
        return produced

    def close(self) -> None:
        self._llm.close()


class TransformersRunner:
    """A Hugging Face directory on the CPU in float32, the reference for parity."""

    def __init__(self, directory: Path, *, context_length: int = 512, name: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name or directory.name
        self.context_length = context_length
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
            self._model = AutoModelForCausalLM.from_pretrained(
                str(directory), local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load model directory {directory}: {type(error).__name__}") from None
        self._model.eval()
        self.eos_id = self._tokenizer.eos_token_id

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def detokenize(self, ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=False))

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            output = self._model(torch.tensor([list(ids)]))
        return output.logits[0].float().numpy()

    def greedy(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        import torch

        with torch.inference_mode():
            generated = self._model.generate(
                torch.tensor([list(ids)]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=self.eos_id,
                pad_token_id=self.eos_id,
            )
        return [int(token) for token in generated[0, len(ids) :]]

    def close(self) -> None:
        del self._model


def open_runner(path: Path, *, context_length: int = 512, threads: int | None = None, name: str | None = None) -> ModelRunner:
    """GGUF files go through llama.cpp, HF directories through transformers."""
    if path.is_dir():
        return TransformersRunner(path, context_length=context_length, name=name)
    return LlamaCppRunner(path, context_length=context_length, threads=threads, name=name)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def negative_log_likelihood(runner: ModelRunner, ids: Sequence[int], start: int = 1) -> tuple[float, int]:
    """Sum of -log p(token) over positions ``start..`` of ``ids`` in context windows, and their count."""
    total, count = 0.0, 0
    window = runner.context_length
    for offset in range(0, len(ids), window):
        chunk = list(ids[offset : offset + window])
        first = max(1, start - offset)
        if len(chunk) <= first:
            continue
        logprobs = log_softmax(runner.logits(chunk)[:-1])
        targets = np.array(chunk[1:])
        picked = logprobs[np.arange(len(targets)), targets][first - 1 :]
        total -= float(picked.sum())
        count += len(picked)
    return total, count


def perplexity(runner: ModelRunner, texts: Iterable[str], max_tokens: int) -> float:
    """Perplexity over ``texts`` (each its own sequence), stopping after about ``max_tokens`` scored tokens."""
    total, count = 0.0, 0
    for text in texts:
        ids = runner.tokenize(text)[: max_tokens - count + 1]
        nll, scored = negative_log_likelihood(runner, ids)
        total, count = total + nll, count + scored
        if count >= max_tokens:
            break
    if count == 0:
        raise ModelError("no held-out tokens to score perplexity on")
    return math.exp(total / count)
