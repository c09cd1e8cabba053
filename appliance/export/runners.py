"""One small interface over llama.cpp (GGUF) and transformers (HF directory) models.

Parity checks, perplexity and the evaluation benchmarks all need the same few things:
tokenize, the logits of every position, greedy continuation, and a question put the way the
model was trained to be asked (its own chat template). Scoring both back-ends through the same
code is what makes their numbers comparable in one table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from deid.errors import ModelError
from serve.engine.gguf_file import check_gguf_file


class ModelRunner(Protocol):
    name: str
    context_length: int
    chat_template: str | None
    end_ids: frozenset[int]

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def logits(self, ids: Sequence[int]) -> np.ndarray: ...

    def greedy(self, ids: Sequence[int], max_new_tokens: int) -> list[int]: ...

    def format_question(self, question: str) -> str: ...

    def close(self) -> None: ...


def default_threads(threads: int | None) -> int:
    return threads or max(1, min(os.cpu_count() or 1, 8))


def raw_question_prompt(question: str) -> str:
    """What a model without a chat template (a base model) is asked: plain text it can continue."""
    return f"Question: {question}\nAnswer:"


def _refuse(message: str) -> None:
    raise ModelError(f"the model's chat template refused the prompt: {message}")


def render_chat_template(template: str, question: str, *, bos_token: str, eos_token: str) -> str:
    """Render a Hugging Face chat template for one user turn, ready for the assistant's answer.

    The template comes from the model file, so it is untrusted code: a sandboxed, immutable
    environment keeps it from reaching Python objects. ``trim_blocks``, ``lstrip_blocks`` and
    loop controls are what transformers renders with, so both back-ends give the same text.
    """
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    try:
        return environment.from_string(template).render(
            messages=[{"role": "user", "content": question}],
            add_generation_prompt=True,
            bos_token=bos_token,
            eos_token=eos_token,
            raise_exception=_refuse,
        )
    except TemplateError as error:
        raise ModelError(f"cannot render the model's chat template: {type(error).__name__}") from None


def question_ids(runner: ModelRunner, question: str) -> list[int]:
    """Token ids of a question as the model expects it.

    A rendered chat template already holds every special token the model wants (BOS
    included, when its template writes one), so nothing is added; a raw prompt gets the
    tokenizer's usual BOS.
    """
    return runner.tokenize(runner.format_question(question), add_special=runner.chat_template is None)


def strip_end(runner: ModelRunner, ids: Sequence[int]) -> list[int]:
    """Generated ids without the end-of-turn token that closed them: it is markup, not answer."""
    return list(ids[:-1]) if ids and ids[-1] in runner.end_ids else list(ids)


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
        model = self._llm._model
        # llama.cpp knows an end-of-turn token apart from EOS for chat models (<|im_end|>, <|eot_id|>, ...).
        self.end_ids = frozenset(int(token) for token in (model.token_eos(), model.token_eot()) if token >= 0)
        self.chat_template: str | None = self._llm.metadata.get("tokenizer.chat_template") or None
        self._bos_text = self._special_text(model.token_bos())
        self._eos_text = self._special_text(model.token_eos())

    def _special_text(self, token: int) -> str:
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0 else ""

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        # special=True: "<|im_start|>" written by a chat template must be the one special token, not its characters.
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True))

    def format_question(self, question: str) -> str:
        """The model's own template from the GGUF metadata, not llama-cpp-python's guess of a format by name."""
        if self.chat_template is None:
            return raw_question_prompt(question)
        return render_chat_template(self.chat_template, question, bos_token=self._bos_text, eos_token=self._eos_text)

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
            if token in self.end_ids or self._llm.n_tokens >= self.context_length:
                break
            self._llm.eval([token])
        return produced

    def close(self) -> None:
        self._llm.close()


class TransformersRunner:
    """A Hugging Face directory on the CPU in float32, the reference for parity."""

    def __init__(
        self, directory: Path, *, context_length: int = 512, name: str | None = None, matrix_dtype: str | None = None
    ) -> None:
        """``matrix_dtype`` ("float16", "bfloat16") rounds every weight matrix through that type, as a
        GGUF of that type stores them, so that a parity check compares conversion, not rounding."""
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
        if matrix_dtype is not None:
            with torch.no_grad():
                for parameter in self._model.parameters():
                    if parameter.ndim >= 2:
                        parameter.copy_(parameter.to(getattr(torch, matrix_dtype)).float())
        # generation_config may list several ends (EOS and end-of-turn); the tokenizer's EOS is always one.
        configured = self._model.generation_config.eos_token_id
        ends = configured if isinstance(configured, list) else [configured]
        self.end_ids = frozenset(int(token) for token in [self._tokenizer.eos_token_id, *ends] if token is not None)
        template = self._tokenizer.chat_template
        # Some tokenizers carry named templates; transformers uses "default" for a plain chat.
        template = template.get("default") if isinstance(template, dict) else template
        self.chat_template: str | None = str(template) if template else None

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def format_question(self, question: str) -> str:
        if self.chat_template is None:
            return raw_question_prompt(question)
        rendered = self._tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
        return str(rendered)

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
                eos_token_id=sorted(self.end_ids) or None,
                pad_token_id=min(self.end_ids, default=None),
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
