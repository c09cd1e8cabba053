"""CLI contract of ``appliance bundle``: one-line refusals with exit codes, CUDA target checks."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from appliance.bundle.build import check_target
from appliance.bundle.wheelhouse import Wheel
from deid.errors import InputError

APPLIANCE = str(Path(sys.executable).parent / "appliance")


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APPLIANCE_HOME": str(home)}
    return subprocess.run([APPLIANCE, "bundle", *args], capture_output=True, text=True, env=env, timeout=120)


def test_verify_refuses_missing_bundle_and_missing_key_in_one_line(tmp_path: Path) -> None:
    done = _run("verify", str(tmp_path / "absent.tar"), "--public-key", str(tmp_path / "absent.pem"), home=tmp_path)
    assert done.returncode == 3 and done.stderr.strip().count("\n") == 0 and "public key file not found" in done.stderr
    (tmp_path / "key.pem").write_text("not a key")
    done = _run("verify", str(tmp_path / "absent.tar"), "--public-key", str(tmp_path / "key.pem"), home=tmp_path)
    assert done.returncode == 3 and "bundle refused: bundle not found" in done.stderr


def test_build_refuses_unknown_archive_name(tmp_path: Path) -> None:
    done = _run("build", "--out", str(tmp_path / "bundle.zip"), "--partial-wheelhouse", home=tmp_path)
    assert done.returncode == 3 and "must end in .tar, .tar.gz or .tar.zst" in done.stderr
    assert not (tmp_path / "bundle.zip").exists()


def _wheel(path: Path, members: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member in members:
            archive.writestr(member, b"")
    return path


def test_cuda_target_refuses_cpu_builds(tmp_path: Path) -> None:
    cpu_llama = _wheel(tmp_path / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl", ["llama_cpp/lib/libggml-cpu.so"])
    (tmp_path / "cuda").mkdir()
    cuda_llama = _wheel(tmp_path / "cuda" / cpu_llama.name, ["llama_cpp/lib/libggml-cuda.so"])
    torch_cpu = Wheel("torch", "2.13.0+cpu", tmp_path / "torch.whl", repacked=False)
    torch_cuda = Wheel("torch", "2.13.0", tmp_path / "torch.whl", repacked=False)
    with pytest.raises(InputError, match="CPU build"):
        check_target("cuda", [torch_cpu, Wheel("llama_cpp_python", "0.3.36", cuda_llama, False)])
    with pytest.raises(InputError, match="no CUDA backend"):
        check_target("cuda", [torch_cuda, Wheel("llama_cpp_python", "0.3.36", cpu_llama, False)])
    check_target("cuda", [torch_cuda, Wheel("llama_cpp_python", "0.3.36", cuda_llama, False)])
    check_target("cpu", [torch_cpu, Wheel("llama_cpp_python", "0.3.36", cpu_llama, False)])
