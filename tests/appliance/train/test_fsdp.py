"""FSDP (``train.sharding = "fsdp"``) under torchrun on two CPU processes (gloo): same training as DDP, in slices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from appliance.config import load_settings
from appliance.train.base_model import load_base_model
from deid.errors import ConfigError

STEPS = 6
TIMEOUT_S = 240


def _env(tmp_path: Path, sharding: str) -> dict[str, str]:
    # LoRA dropout on (the default's 0.05 raised): a resumed run must give each rank back its own
    # generators to draw the masks the run that never stopped drew
    env = {**os.environ, "APPLIANCE_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1",
           "GLOO_SOCKET_IFNAME": "lo", "APPLIANCE_TRAIN__BATCH_SIZE": "2", "APPLIANCE_TRAIN__MAX_SEQ_LENGTH": "64",
           "APPLIANCE_TRAIN__EVAL_INTERVAL": "2", "APPLIANCE_TRAIN__CHECKPOINT_INTERVAL": "2",
           "APPLIANCE_TRAIN__CPU_THREADS": "1", "APPLIANCE_TRAIN__LORA_DROPOUT": "0.1",
           "APPLIANCE_TRAIN__LEARNING_RATE": "0.01",
           "APPLIANCE_TRAIN__GRADIENT_ACCUMULATION_STEPS": "2", "APPLIANCE_TRAIN__SHARDING": sharding}
    env.pop("APPLIANCE_CONFIG", None)
    return env


def _command(dataset: Path, model: Path, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
            "-m", "appliance", "train", "--dataset", str(dataset), "--base-model", str(model),
            "--workdir", str(workdir), "--max-steps", str(STEPS)]


def _train(dataset: Path, model: Path, workdir: Path, env: dict[str, str]) -> None:
    done = subprocess.run(_command(dataset, model, workdir), capture_output=True, text=True, env=env,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]


def _kill_after_first_checkpoint(dataset: Path, model: Path, workdir: Path, env: dict[str, str]) -> None:
    """SIGKILL the whole torchrun group as soon as a resume checkpoint is on disk, as a lost node would."""
    launched = subprocess.Popen(_command(dataset, model, workdir), env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not list((workdir / ".resume").glob("train/*/checkpoint/state.pt")):
            assert launched.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint in time"
            time.sleep(0.05)
    finally:
        # torchrun starts each rank in a session of its own: kill them by id, then torchrun
        ranks = Path(f"/proc/{launched.pid}/task/{launched.pid}/children").read_text().split()
        for rank in ranks:
            os.kill(int(rank), signal.SIGKILL)
        os.killpg(launched.pid, signal.SIGKILL)
        launched.wait()
    # a killed process dies when the kernel next schedules it: no rank may still be writing after this
    while any(_running(int(rank)) for rank in ranks):
        assert time.monotonic() < deadline, "a killed rank is still running"
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _curve(workdir: Path) -> list[tuple[str, int, float]]:
    rows = [json.loads(line) for line in (workdir / "train" / "metrics.jsonl").read_text().splitlines()]
    return [(r["kind"], r["step"], r.get("loss", r.get("val_loss"))) for r in rows]


def test_fsdp_trains_as_ddp_does_and_resumes_after_a_kill(tmp_path: Path, dataset_dir: Path,
                                                          tiny_hf_model: Path) -> None:
    _train(dataset_dir, tiny_hf_model, tmp_path / "ddp", _env(tmp_path, "none"))
    sharded = tmp_path / "fsdp"
    _kill_after_first_checkpoint(dataset_dir, tiny_hf_model, sharded, _env(tmp_path, "fsdp"))
    assert not (sharded / "train").exists()
    _train(dataset_dir, tiny_hf_model, sharded, _env(tmp_path, "fsdp"))

    summary = json.loads((sharded / "train" / "summary.json").read_text())
    assert summary["sharding"] == "fsdp" and summary["world_size"] == 2 and summary["steps"] == STEPS
    assert summary["resumed_from_step"] >= 2
    base = load_base_model(tiny_hf_model).model
    whole = sum(p.numel() for p in base.parameters()) + summary["trainable_parameters"]
    # each process held about half of every weight, frozen base included
    assert 0.45 * whole < summary["parameters_per_process"] < 0.55 * whole
    replicated = json.loads((tmp_path / "ddp" / "train" / "summary.json").read_text())
    assert replicated["sharding"] == "none" and replicated["parameters_per_process"] == whole

    # the same losses step by step as DDP (which never stopped), and the same adapter
    ddp_curve, fsdp_curve = _curve(tmp_path / "ddp"), _curve(sharded)
    assert [row[:2] for row in fsdp_curve] == [row[:2] for row in ddp_curve]
    assert [row[2] for row in fsdp_curve] == pytest.approx([row[2] for row in ddp_curve], abs=1e-4)
    assert ddp_curve[-1][2] != ddp_curve[1][2]  # the learning rate moves the loss: the comparison has teeth
    expected = load_file(str(tmp_path / "ddp" / "train" / "adapter" / "adapter_model.safetensors"))
    got = load_file(str(sharded / "train" / "adapter" / "adapter_model.safetensors"))
    assert expected.keys() == got.keys()
    for name in expected:
        assert got[name].shape == expected[name].shape, name
        torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4)
    assert any(float(value.abs().max()) > 0 for name, value in got.items() if "lora_B" in name)

    from peft import PeftModel

    ids = torch.tensor([[5, 6, 7, 8]])
    before = base(ids).logits.detach()
    tuned = PeftModel.from_pretrained(base, str(sharded / "train" / "adapter"))
    assert not torch.allclose(tuned(ids).logits, before)


def test_fsdp_refuses_a_4bit_base_by_name() -> None:
    with pytest.raises(ConfigError, match=r"train\.sharding = fsdp cannot split a 4-bit \(qlora\) base"):
        load_settings(train={"sharding": "fsdp", "qlora": True})
    assert load_settings(train={"sharding": "fsdp"}).train.sharding == "fsdp"
