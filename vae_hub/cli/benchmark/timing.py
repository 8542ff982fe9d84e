"""Measuring: latency percentiles, peak memory, the CPU's matmul throughput."""

from __future__ import annotations

import resource
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def percentiles(seconds: list[float]) -> dict[str, float]:
    """Median and p99 in milliseconds (p99: the value 99% of runs stay under; the maximum below 100 runs)."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {"median_ms": statistics.median(ordered) * 1e3, "p99_ms": p99 * 1e3, "runs": len(ordered)}


def latency(fn: Callable[[], object], runs: int, warmup: int = 10) -> dict[str, float]:
    """Call ``fn`` ``warmup`` times, then time ``runs`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return percentiles(times)


def status_kb(field: str) -> int:
    """A field of this process's /proc status in KiB (VmRSS, RssAnon, ...); 0 where there is none."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def rss_mb() -> float:
    """Resident memory of this process now, in MB (from /proc on Linux; NaN elsewhere)."""
    kb = status_kb("VmRSS")
    return kb / 1024 if kb else float("nan")


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory of this process (or of ``pid``, from /proc on Linux), in MB."""
    if pid is not None:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of a large square matmul in ``dtype``: the CPU's practical peak for dense maths."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}  # a floor: its precision's peak


def read_peaks(readings: dict[str, list[float]]) -> None:
    """One more reading of the matmul peak for each precision in ``readings``. A section spreads them through its
    runs and takes its floors at their median: a shared host's speed moves by 10-30% within minutes."""
    for precision, values in readings.items():
        values.append(matmul_gflops(dtype=PEAK_DTYPES[precision]))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
