"""DPO's held-out measure: the policy's preference per answer token, beside DPO's reward relative to the reference."""

from __future__ import annotations

import math

import pytest
import torch

from appliance.train.data import IGNORE, Sequence
from appliance.train.dpo import Pair, preference_report


def test_a_long_answer_the_model_prefers_per_token_counts_as_preferred() -> None:
    # chosen: 150 tokens at -1.0 each; rejected: a 10-token refusal at -2.0 each. Summed, the refusal
    # looks likelier (-20 > -150) only because it is short.
    policy = torch.tensor([[-150.0, -20.0]])
    tokens = torch.tensor([[150.0, 10.0]])
    report = preference_report(policy, policy, tokens, beta=0.1)
    assert report["accuracy"] == 1.0 and report["logp_margin"] == pytest.approx(1.0)
    assert report["reward_margin"] == 0.0 and report["reward_accuracy"] == 0.0  # the reference itself: no reward
    assert report["loss"] == pytest.approx(math.log(2), abs=1e-6)


def test_reward_is_the_shift_from_the_reference_and_accuracy_the_policy_alone() -> None:
    reference = torch.tensor([[-40.0, -30.0], [-40.0, -30.0]])
    tokens = torch.tensor([[20.0, 20.0], [20.0, 20.0]])
    # pair 0: chosen up 4 nats, rejected down 16 -> now preferred; pair 1: both down 5 -> still not preferred
    policy = torch.tensor([[-36.0, -46.0], [-45.0, -35.0]])
    report = preference_report(policy, reference, tokens, beta=0.5)
    assert report["accuracy"] == 0.5
    assert report["logp_margin"] == pytest.approx((0.5 + -0.5) / 2)  # per token: +10/20 and -10/20
    assert report["reward_accuracy"] == 0.5  # pair 1's reward is exactly zero
    assert report["reward_margin"] == pytest.approx((0.5 * 20 + 0.0) / 2)


def test_answer_tokens_count_the_scored_positions_only() -> None:
    prompt = [IGNORE] * 4
    chosen = Sequence(list(range(10)), [*prompt, *range(4, 10)], False)
    rejected = Sequence(list(range(6)), [*prompt, 4, 5], False)
    assert Pair(chosen, rejected).answer_tokens() == (6, 2)
