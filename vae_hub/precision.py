"""Which precision a training run uses: bf16 autocast where the hardware computes bfloat16 natively, else fp32."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86: /proc/cpuinfo flags; aarch64 lists "bf16" among its features


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (x86 AVX512-BF16 or AMX, Arm BF16).

    Without them torch still runs bf16, by converting to fp32 and back: slower than fp32, so never chosen by default.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # macOS, Windows: no cpuinfo; Apple silicon's bf16 is not used by torch's CPU kernels
            return False
    words = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            words |= set(value.split())
    arm = platform.machine().lower() in ("aarch64", "arm64")
    return any(flag in words for flag in CPU_BF16_FLAGS) or (arm and "bf16" in words)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matmuls natively (a GPU with bf16 support, or such a CPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def training_device(cpu: bool) -> torch.device:
    """The device Accelerate picks for one process: the GPU unless ``cpu`` or none is present."""
    return torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")


def resolve_mixed_precision(requested: str, cpu: bool = False) -> str:
    """``auto`` -> ``bf16`` where it is native (same test loss, up to 3x faster), else ``no``; others unchanged."""
    if requested != "auto":
        return requested
    return "bf16" if native_bf16(training_device(cpu)) else "no"


def nll_precision(requested: str, device: torch.device) -> str:
    """The importance-sampled NLL's decoder precision: ``auto`` -> bf16 where ``device`` computes it natively."""
    if requested != "auto":
        return requested
    return "bf16" if native_bf16(device) else "fp32"


@contextmanager
def flush_denormals() -> Iterator[bool]:
    """Inside, this thread's CPU arithmetic treats denormal floats (below ~1.2e-38) as zero; after, torch's default.

    Adam's second moments drift into that range, and on Intel CPUs each operation on a denormal is a slow microcode
    assist (measured in docs/performance.md, "Denormals"). The setting is per thread and torch's worker threads copy
    it only when they start: see ``flush_denormals_in_this_process``. Yields whether the CPU supports it.
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)


def flush_denormals_in_this_process() -> bool:
    """Flush denormals to zero in this thread and every thread started after it, for the rest of the process.

    For a process that trains and exits (``vae-hub train``), called before torch starts its OpenMP worker threads,
    which copy the calling thread's setting when they start (``flush_denormals`` reaches only its own thread).
    Returns whether the CPU supports it.
    """
    return torch.set_flush_denormal(True)
