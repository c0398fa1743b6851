"""What the machine and this process are using: device, memory, CPU (psutil)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ResourceSnapshot:
    device: str
    ram_total_gb: float
    ram_used_gb: float
    ram_available_gb: float
    process_rss_mb: float
    process_cpu_percent: float
    cpu_count: int


def describe_device() -> str:
    """The device ``auto`` resolves to, with the accelerator's name where there is one."""
    import torch

    from engine.models.spec import resolve_device

    device = resolve_device("auto")
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    if device == "mps":
        return "mps (Apple Silicon)"
    return f"cpu ({psutil.cpu_count(logical=True)} threads, torch {torch.__version__})"


def snapshot(device: str | None = None) -> ResourceSnapshot:
    mem = psutil.virtual_memory()
    proc = psutil.Process(os.getpid())
    gb = 1024**3
    return ResourceSnapshot(
        device=device or describe_device(),
        ram_total_gb=mem.total / gb,
        ram_used_gb=(mem.total - mem.available) / gb,
        ram_available_gb=mem.available / gb,
        process_rss_mb=proc.memory_info().rss / 1024**2,
        process_cpu_percent=proc.cpu_percent(interval=None),
        cpu_count=psutil.cpu_count(logical=True) or 1,
    )
