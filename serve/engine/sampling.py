"""Per-request sampling: each sequence carries its own llama.cpp sampler chain and seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import llama_cpp


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)


def build_sampler(params: SamplingParams) -> llama_cpp.llama_sampler_p:
    """Greedy at temperature 0 (deterministic), else top-p then temperature then a seeded draw."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if params.temperature <= 0.0:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    if params.top_p < 1.0:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(params.temperature))
    seed = params.seed if params.seed is not None else random.SystemRandom().getrandbits(32)
    llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
    return chain


def free_sampler(chain: llama_cpp.llama_sampler_p) -> None:
    llama_cpp.llama_sampler_free(chain)
