"""Training tests: one torch thread (on a shared 2-core box its pool spins 50x slower), and the distributed tests' data set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.appliance.train.test_train import QA, TEXTS, _chat, _write


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DDP and FSDP tests' set: enough text windows and chats for 2 processes x batch 2 over several steps."""
    directory = tmp_path_factory.mktemp("dataset")
    train = [{"recipe": "pretrain", "group": f"p{i}", "kind": "text", "text": t} for i, t in enumerate(TEXTS * 3)]
    train += [_chat(q, a, f"q{i}") for i, (q, a) in enumerate(QA * 3)]
    _write(directory / "train.jsonl", train)
    _write(directory / "validation.jsonl", [_chat(q, a, "v") for q, a in QA[:2]])
    return directory
