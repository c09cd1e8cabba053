"""Pick an answer among fixed options by the model's log-likelihood of each continuation.

When the options' tokens first differ at one position (" yes" / " no" / " maybe", " A" ... " E",
possibly after a shared leading space token), one forward pass up to that position decides:
the shared part has the same probability for every option. Otherwise each option's full
continuation is scored by its mean log-likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.export.runners import ModelRunner, log_softmax, negative_log_likelihood


def fit_to_context(ids: list[int], runner: ModelRunner, reserve: int) -> list[int]:
    """Keep the end of an over-long prompt: the question and answer cue are what must survive."""
    limit = runner.context_length - reserve
    return ids if len(ids) <= limit else ids[-limit:]


def _shared_length(sequences: list[list[int]]) -> int:
    length = 0
    while all(len(tokens) > length for tokens in sequences) and len({tokens[length] for tokens in sequences}) == 1:
        length += 1
    return length


def rank_options(runner: ModelRunner, prompt: str, options: Sequence[str]) -> int:
    prefix = runner.tokenize(prompt)
    continuations: list[list[int]] = []
    for option in options:
        full = runner.tokenize(prompt + option)
        continuations.append(full[len(prefix) :] if full[: len(prefix)] == prefix else runner.tokenize(option, add_special=False))
    shared = _shared_length(continuations)
    divergent = [tokens[shared] if len(tokens) > shared else -1 for tokens in continuations]
    if -1 not in divergent and len(set(divergent)) == len(divergent):
        context = fit_to_context(prefix + continuations[0][:shared], runner, 1)
        last = log_softmax(runner.logits(context)[-1])
        return int(np.argmax([last[token] for token in divergent]))
    scores = []
    for tokens in continuations:
        ids = fit_to_context(prefix + tokens, runner, 0)
        nll, count = negative_log_likelihood(runner, ids, start=len(ids) - len(tokens))
        scores.append(-nll / max(count, 1))
    return int(np.argmax(scores))
