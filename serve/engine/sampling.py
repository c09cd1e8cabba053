"""Per-request sampling: each sequence carries its own llama.cpp sampler chain and seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import llama_cpp
import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)


def build_sampler(params: SamplingParams) -> llama_cpp.llama_sampler_p | None:
    """None for greedy (temperature 0, deterministic), else top-p then temperature then a seeded draw."""
    if params.temperature <= 0.0:
        return None
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if params.top_p < 1.0:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
    seed = params.seed if params.seed is not None else random.SystemRandom().getrandbits(32)
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain


def pick_token(chain: llama_cpp.llama_sampler_p | None, ctx: llama_cpp.llama_context_p, index: int,
               n_vocab: int) -> int:
    """The next token from output row ``index`` of the last decode.

    Greedy reads the logits in place: llama.cpp's greedy sampler first copies the whole vocabulary
    into a candidate array, about 7x the cost, paid once per sequence per step on the engine
    thread while the other compute threads wait. Both return the first highest logit.
    """
    if chain is None:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(n_vocab,))
        return int(logits.argmax())
    return int(llama_cpp.llama_sampler_sample(chain, ctx, index))


def free_sampler(chain: llama_cpp.llama_sampler_p | None) -> None:
    if chain is not None:
        llama_cpp.llama_sampler_free(chain)
