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
    grammar: str | None = field(default=None, repr=False)


class GrammarError(ValueError):
    """llama.cpp could not parse a grammar; raised before the request reaches the engine."""


def grammar_sampler(vocab: llama_cpp.llama_vocab_p, grammar: str) -> llama_cpp.llama_sampler_p:
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        raise GrammarError("the grammar could not be parsed")
    return sampler


def check_grammar(vocab: llama_cpp.llama_vocab_p, grammar: str) -> None:
    """Parse once on the request's thread so a bad grammar is a 400, not a failed generation."""
    llama_cpp.llama_sampler_free(grammar_sampler(vocab, grammar))


def build_sampler(params: SamplingParams, vocab: llama_cpp.llama_vocab_p) -> llama_cpp.llama_sampler_p | None:
    """None for unconstrained greedy (temperature 0, deterministic); else a chain: the grammar
    first (it only masks tokens), then top-p, temperature and a seeded draw, or greedy."""
    if params.temperature <= 0.0 and params.grammar is None:
        return None
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if params.grammar is not None:
        llama_cpp.llama_sampler_chain_add(chain, grammar_sampler(vocab, params.grammar))
    if params.temperature <= 0.0:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
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
