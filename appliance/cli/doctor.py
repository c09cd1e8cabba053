"""``appliance doctor``: what is installed, which accelerator, where the models are, and egress."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from appliance.cli.context import settings_from
from appliance.config import ApplianceSettings
from deid.egress import EgressMode, install_egress_guard, installed_guard
from deid.errors import ApplianceError


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch_report() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"installed": False}
    cuda = torch.cuda.is_available()
    return {
        "installed": True,
        "version": torch.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
    }


def _llama_report() -> dict[str, Any]:
    try:
        import llama_cpp
    except ImportError:
        return {"installed": False}
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    return {
        "installed": True,
        "version": llama_cpp.__version__,
        "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "system_info": info,
    }


def _egress_check() -> dict[str, Any]:
    """Try to resolve and reach a public address with the guard on; both must be refused."""
    import socket

    guard = installed_guard() or install_egress_guard(EgressMode.strict)
    before = guard.attempts
    refused = []
    for probe in (lambda: socket.getaddrinfo("pypi.org", 443), lambda: socket.create_connection(("192.0.2.1", 9), 1)):
        try:
            probe()
            refused.append(False)
        except OSError:
            refused.append(True)
    return {
        "guard_mode": guard.mode.value,
        "outbound_refused": all(refused),
        "attempts_counted": guard.attempts - before,
    }


def _available_memory(gpu: bool) -> tuple[str, int | None]:
    """Free memory where the weights will live: all GPUs together when offloading, else RAM."""
    if gpu:
        try:
            import torch

            if torch.cuda.is_available():
                return "gpu", sum(torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count()))
        except (ImportError, RuntimeError):
            pass
        return "gpu", None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return "ram", int(line.split()[1]) * 1024
    except OSError:
        pass
    return "ram", None


def _serving_memory(settings: ApplianceSettings) -> dict[str, Any]:
    """Memory the configured model needs at serve.parallel x serve.context_length, against what is free."""
    from appliance.serving import served_model_path
    from serve.engine.llama_model import GpuPlacement
    from serve.engine.memory import estimate

    config = settings.serve
    try:
        model = served_model_path(settings)
        needed = estimate(model, config)
    except (ApplianceError, OSError, KeyError, ValueError) as error:
        return {"error": f"cannot estimate: {type(error).__name__}"}
    gpu = GpuPlacement(config.gpu_layers, config.main_gpu, tuple(config.tensor_split)).offloaded_layers() != 0
    where, available = _available_memory(gpu)
    mib = 2**20
    # The prompt cache is host memory whatever device the model runs on; it fills up to its bound.
    total = needed.total_bytes + (config.prompt_cache_mib * mib if where == "ram" else 0)
    return {
        "model": str(model),
        "parallel": config.parallel,
        "context_length": config.context_length,
        "kv_cache_type": config.kv_cache_type.value,
        "on": where,
        "weights_mib": round(needed.weights_bytes / mib),
        "kv_cache_mib": round(needed.kv_cache_bytes / mib),
        "working_mib": round(needed.working_bytes / mib),
        "prompt_cache_mib": config.prompt_cache_mib,
        "needed_mib": round(total / mib),
        "available_mib": None if available is None else round(available / mib),
        "fits": None if available is None else total <= available,
    }


def collect(settings_home: Path, configured_model: Path | None) -> dict[str, Any]:
    from appliance.model_source import resolve_base_model
    from serve.engine.gguf_file import embedded_model_path

    models: dict[str, Any] = {}
    try:
        models["embedded"] = str(embedded_model_path())
    except ApplianceError as error:
        models["embedded_error"] = str(error)
    try:
        models["base"] = str(resolve_base_model(configured_model))
    except ApplianceError as error:
        models["base_error"] = str(error)
    disk_root = settings_home if settings_home.exists() else Path.home()
    usage = shutil.disk_usage(disk_root)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "appliance": _package_version("medical-appliance"),
        "packages": {
            name: _package_version(name)
            for name in ("transformers", "peft", "presidio-analyzer", "spacy", "gguf", "fastapi", "cryptography")
        },
        "torch": _torch_report(),
        "llama_cpp": _llama_report(),
        "home": str(settings_home),
        "models": models,
        "disk_free_gb": round(usage.free / 1e9, 1),
        "egress": _egress_check(),
    }


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    ) -> None:
        """Check the installation: packages, torch/CUDA, llama.cpp, models, disk and the egress guard."""
        settings = settings_from(ctx)
        report = collect(settings.home, settings.models.base)
        report["serving_memory"] = _serving_memory(settings)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            _print_report(report)
        healthy = (
            report["egress"]["outbound_refused"]
            and "base_error" not in report["models"]
            and report["serving_memory"].get("fits") is not False
        )
        if not healthy:
            raise typer.Exit(1)


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="appliance doctor", show_header=False)
    table.add_column("check")
    table.add_column("result")
    torch_info, llama_info, egress = report["torch"], report["llama_cpp"], report["egress"]
    table.add_row("python", report["python"])
    table.add_row("appliance", str(report["appliance"]))
    table.add_row("torch", f"{torch_info.get('version')} cuda={torch_info.get('cuda_available')}")
    table.add_row("llama.cpp", f"{llama_info.get('version')} gpu_offload={llama_info.get('gpu_offload')}")
    for name, value in report["models"].items():
        table.add_row(f"model {name}", value)
    table.add_row("home", report["home"])
    table.add_row("disk free", f"{report['disk_free_gb']} GB")
    memory = report.get("serving_memory", {})
    if "needed_mib" in memory:
        fits = {True: "fits", False: "DOES NOT FIT", None: "free memory unknown"}[memory["fits"]]
        table.add_row(
            "serving memory",
            f"{memory['needed_mib']} MiB needed (weights {memory['weights_mib']} + KV cache {memory['kv_cache_mib']}"
            f" for {memory['parallel']} x {memory['context_length']} + working {memory['working_mib']})"
            f" vs {memory['available_mib']} MiB free {memory['on']}: {fits}",
        )
    elif memory:
        table.add_row("serving memory", memory["error"])
    verdict = "refused (offline)" if egress["outbound_refused"] else "NOT REFUSED"
    table.add_row("outbound network", f"{verdict}; guard {egress['guard_mode']}")
    Console().print(table)
