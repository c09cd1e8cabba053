"""Train/validation split by group (patient), so no patient is on both sides.

A per-example split would let the validation loss reward memorizing a patient's other
notes; splitting whole groups measures generalization to unseen patients.
"""

from __future__ import annotations

import random
from collections import defaultdict

from appliance.dataset.recipes import Example


def split_by_group(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    if fraction <= 0 or not examples:
        return list(examples), []
    by_group: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_group[example.group].append(example)
    groups = sorted(by_group)
    if len(groups) < 2:
        return list(examples), []
    random.Random(seed).shuffle(groups)
    target = fraction * len(examples)
    # Take whole groups while they fit the target, so one large patient cannot swamp it;
    # if none fits, the smallest group alone makes the validation side.
    validation_groups: set[str] = set()
    taken = 0
    for group in groups:
        if taken + len(by_group[group]) <= target and len(validation_groups) < len(groups) - 1:
            validation_groups.add(group)
            taken += len(by_group[group])
    if not validation_groups:
        validation_groups.add(min(groups, key=lambda g: (len(by_group[g]), g)))
    train = [e for e in examples if e.group not in validation_groups]
    validation = [e for e in examples if e.group in validation_groups]
    return train, validation
