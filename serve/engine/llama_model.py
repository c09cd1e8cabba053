"""One GGUF model (plus optional LoRA adapter) loaded through llama.cpp's C API.

We talk to the C API directly rather than through ``llama_cpp.Llama`` because the high-level
class owns a single sequence; the batch scheduler needs one model and one context holding many
sequences, which only the low-level calls expose.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass, field
from pathlib import Path

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from deid.errors import ModelError
from deid.fileio import sha256_file
from serve.engine.gguf_file import check_gguf_file

CHATML_FALLBACK = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def quiet_llama_logs() -> None:
    """llama.cpp's loader chatter goes to stderr by default; keep only its errors."""
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


@dataclass(frozen=True)
class GpuPlacement:
    """Where the weights go. ``layers`` None = every layer when llama.cpp was built with a GPU
    backend (CUDA, Metal, Vulkan, ...), none otherwise; -1 = every layer."""

    layers: int | None = None
    main_gpu: int = 0
    tensor_split: tuple[float, ...] = ()

    def offloaded_layers(self) -> int:
        if self.layers is None:
            return -1 if llama_cpp.llama_supports_gpu_offload() else 0
        return self.layers

    def apply(self, params: llama_cpp.llama_model_params) -> ctypes.Array[ctypes.c_float] | None:
        """Set the placement on ``params``; the returned array must outlive the load."""
        params.n_gpu_layers = self.offloaded_layers()
        params.main_gpu = self.main_gpu
        if not self.tensor_split:
            return None
        if len(self.tensor_split) > llama_cpp.llama_max_devices():
            raise ModelError(f"serve.tensor_split names more GPUs than llama.cpp supports ({llama_cpp.llama_max_devices()})")
        shares = (ctypes.c_float * llama_cpp.llama_max_devices())(*self.tensor_split)
        params.split_mode = llama_cpp.LLAMA_SPLIT_MODE_LAYER
        params.tensor_split = shares
        return shares


@dataclass
class LoadedModel:
    """The weights, vocabulary and chat template of the served model."""

    path: Path
    adapter_path: Path | None
    model_id: str
    sha256: str
    adapter_sha256: str | None
    handle: ctypes.c_void_p
    vocab: llama_cpp.llama_vocab_p
    adapter: ctypes.c_void_p | None
    n_ctx_train: int
    add_bos: bool
    formatter: Jinja2ChatFormatter
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def load(
        cls, path: Path, adapter: Path | None = None, model_id: str | None = None,
        placement: GpuPlacement | None = None,
    ) -> LoadedModel:
        check_gguf_file(path)
        if adapter is not None:
            check_gguf_file(adapter)
        quiet_llama_logs()
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        split = (placement or GpuPlacement()).apply(params)
        handle = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
        del split  # llama.cpp reads the tensor split during the load only
        if not handle:
            raise ModelError(f"llama.cpp could not load the model: {path}")
        lora = None
        if adapter is not None:
            lora = llama_cpp.llama_adapter_lora_init(handle, str(adapter).encode("utf-8"))
            if not lora:
                llama_cpp.llama_model_free(handle)
                raise ModelError(f"llama.cpp could not load the LoRA adapter: {adapter}")
        vocab = llama_cpp.llama_model_get_vocab(handle)
        metadata = _metadata(handle)
        bos = _token_text(vocab, llama_cpp.llama_vocab_bos(vocab))
        eos = _token_text(vocab, llama_cpp.llama_vocab_eos(vocab))
        template = metadata.get("tokenizer.chat_template") or CHATML_FALLBACK
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        return cls(
            path=path,
            adapter_path=adapter,
            model_id=model_id or default_model_id(path, adapter),
            sha256=sha256_file(path),
            adapter_sha256=sha256_file(adapter) if adapter is not None else None,
            handle=handle,
            vocab=vocab,
            adapter=lora,
            n_ctx_train=llama_cpp.llama_model_n_ctx_train(handle),
            add_bos=bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            formatter=formatter,
        )

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The model's own chat template, never llama-cpp-python's built-in substitutes."""
        return self.formatter(messages=messages).prompt  # type: ignore[arg-type]  # role/content dicts: what the template reads

    def chat_preamble(self) -> str:
        """What the template writes before the first user message's text when no system message is given.

        Every such conversation starts with these tokens, so the engine computes them once. It is
        template text only: no request's content ever lands in a cache another request reads.
        """
        marker = "\u2063preamble-marker\u2063"
        rendered = self.render_chat([{"role": "user", "content": marker}])
        return rendered.split(marker, 1)[0] if marker in rendered else ""

    def tokenize(self, text: str, *, special: bool = False, add_bos: bool | None = None) -> list[int]:
        """Tokens of ``text``. ``special`` parses control-token text such as ``<|im_start|>``: only the
        chat template's own text is tokenized that way, never what a caller sent, or a prompt could
        open a system turn of its own."""
        data = text.encode("utf-8")
        bos = self.add_bos if add_bos is None else add_bos
        capacity = len(data) + 8
        tokens = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(self.vocab, data, len(data), tokens, capacity, bos, special)
        if count < 0:
            capacity = -count
            tokens = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(self.vocab, data, len(data), tokens, capacity, bos, special)
        return list(tokens[:count])

    def tokenize_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """The rendered conversation with the template's markers as control tokens and every message's
        content as plain text: the template is rendered around placeholders, then each piece is
        tokenized on its own terms."""
        markers = [f"\u2063m{index}\u2063" for index in range(len(messages))]
        rendered = self.render_chat([{**message, "content": marker} for message, marker in zip(messages, markers, strict=True)])
        tokens: list[int] = []
        rest = rendered
        for message, marker in zip(messages, markers, strict=True):
            before, found, rest = rest.partition(marker)
            if not found:  # a template that drops or rewrites content: tokenize it all as plain text
                return self.tokenize(self.render_chat(messages))
            tokens += self.tokenize(before, special=True, add_bos=not tokens and self.add_bos)
            tokens += self.tokenize(message["content"], special=False, add_bos=False)
        return tokens + self.tokenize(rest, special=True, add_bos=False)

    def piece(self, token: int, buffer: ctypes.Array[ctypes.c_char]) -> bytes:
        """Bytes of one generated token; control tokens render as nothing."""
        size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, len(buffer), 0, False)
        if size < 0:
            bigger = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, bigger, -size, 0, False)
            return bigger.raw[:size]
        return buffer.raw[:size]

    def is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.adapter is not None:
            llama_cpp.llama_adapter_lora_free(self.adapter)
        llama_cpp.llama_model_free(self.handle)


def default_model_id(path: Path, adapter: Path | None) -> str:
    """The id clients send as ``model``: the file name, so two different exports never share one."""
    name = path.name.removesuffix(".gguf")
    return name if adapter is None else f"{name}+{adapter.name.removesuffix('.gguf')}"


def _token_text(vocab: llama_cpp.llama_vocab_p, token: int) -> str:
    if token < 0:
        return ""
    text = llama_cpp.llama_vocab_get_text(vocab, token)
    return text.decode("utf-8", "replace") if text else ""


def _metadata(handle: ctypes.c_void_p) -> dict[str, str]:
    values: dict[str, str] = {}
    size = 1 << 16
    buffer = ctypes.create_string_buffer(size)
    for index in range(llama_cpp.llama_model_meta_count(handle)):
        llama_cpp.llama_model_meta_key_by_index(handle, index, buffer, size)
        key = buffer.value.decode("utf-8", "replace")
        needed = llama_cpp.llama_model_meta_val_str_by_index(handle, index, buffer, size)
        if needed >= size:
            bigger = ctypes.create_string_buffer(needed + 1)
            llama_cpp.llama_model_meta_val_str_by_index(handle, index, bigger, needed + 1)
            values[key] = bigger.value.decode("utf-8", "replace")
        else:
            values[key] = buffer.value.decode("utf-8", "replace")
    return values
