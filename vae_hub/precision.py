"""Which precision a training run uses: bf16 autocast where the hardware computes bfloat16 natively, else fp32."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch

# What x86 CPUs offer torch, lowest first; bf16 dot products (native bf16) start at AVX-512 BF16.
CAPABILITIES = ("below AVX2", "AVX2", "AVX-512", "AVX-512 BF16", "AMX")
NATIVE_BF16 = CAPABILITIES.index("AVX-512 BF16")
# /proc/cpuinfo flags that lift the level, checked from the top
CPU_FLAGS = {"AMX": {"amx_bf16"}, "AVX-512 BF16": {"avx512_bf16"}, "AVX-512": {"avx512f", "avx512bw", "avx512vl"},
             "AVX2": {"avx2", "fma"}}  # fmt: skip
# The variables that cap what torch's libraries use (oneDNN: convolutions and bf16 matmuls; ATen: elementwise
# kernels; MKL: fp32 matmuls), as a level: how an AVX2-only laptop is reproduced on a newer CPU.
CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def isa_level(variable: str, value: str) -> int:
    """The level (an index of ``CAPABILITIES``) that one of ``CAP_VARIABLES`` set to ``value`` caps torch at."""
    v, top = value.strip().upper(), len(CAPABILITIES) - 1
    if variable == "ATEN_CPU_CAPABILITY":  # default | avx2 | avx512
        return {"DEFAULT": 0, "AVX2": 1}.get(v, top)
    if variable == "MKL_ENABLE_INSTRUCTIONS":  # fp32 matmuls only: AVX-512 is all they use on any CPU
        return 1 if v == "AVX2" else top if v.startswith(("AVX512", "AVX10")) else 0
    if v in ("", "ALL", "DEFAULT"):  # oneDNN's ISA names: SSE41, AVX2, AVX512_CORE_BF16, AVX512_CORE_AMX, ...
        return top
    if "AMX" in v:
        return CAPABILITIES.index("AMX")
    if "BF16" in v or "FP16" in v or v.startswith("AVX10"):
        return NATIVE_BF16
    if v.startswith("AVX512"):
        return CAPABILITIES.index("AVX-512")
    return 1 if v.startswith("AVX2") else 0


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``), from /proc/cpuinfo or the text given."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # macOS, Windows: no cpuinfo; Apple silicon's bf16 is not used by torch's CPU kernels
            return set()
    words: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            words |= set(value.split())
    return words


def cpu_capability(cpuinfo: str | None = None, env: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
    """The x86 capability torch's kernels use here (an index of ``CAPABILITIES``) and the variables that capped it.

    The CPU's flags give what it has; ``ONEDNN_MAX_CPU_ISA=AVX2`` and the like (``CAP_VARIABLES``) lower it.
    """
    flags = cpu_flags(cpuinfo)
    level = next((CAPABILITIES.index(name) for name, need in CPU_FLAGS.items() if need <= flags), 0)
    env = os.environ if env is None else env
    caps = [(f"{name}={env[name]}", isa_level(name, env[name])) for name in CAP_VARIABLES if name in env]
    caps = [(text, cap) for text, cap in caps if cap < level]
    return min([level, *(cap for _, cap in caps)]), [text for text, _ in caps]


def describe_cpu_capability(cpuinfo: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``"AVX2"``, ``"AMX"``, ...; with what capped it: ``"AVX2 (capped by ONEDNN_MAX_CPU_ISA=AVX2)"``."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "Arm with BF16" if "bf16" in cpu_flags(cpuinfo) else "Arm"
    level, caps = cpu_capability(cpuinfo, env)
    return CAPABILITIES[level] + (f" (capped by {', '.join(caps)})" if caps else "")


def cpu_has_native_bf16(cpuinfo: str | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether torch computes bfloat16 dot products natively here (x86 AVX512-BF16 or AMX, Arm BF16), given the
    CPU's flags and any cap on the instructions its libraries may use (``CAP_VARIABLES``).

    Without them torch still runs bf16, by converting to fp32 and back: slower than fp32 (a 2048² matmul capped at
    AVX2 runs at 0.4 GFLOP/s against fp32's ~180), so never chosen by default.
    """
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in cpu_flags(cpuinfo)
    return cpu_capability(cpuinfo, env)[0] >= NATIVE_BF16


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
