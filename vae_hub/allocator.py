"""glibc's allocator set up for a training process: freed buffers are reused, not handed back to the kernel."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # the most glibc allows on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20


def keep_freed_memory() -> bool:
    """Serve allocations up to 32 MB from the heap and keep up to 256 MB of freed memory there; True if applied.

    A training step frees and reallocates the same few-MB activations and gradients every time. By default glibc
    maps each one afresh (or hands the freed top of its heap back to the kernel), so every step pays a page fault
    per 4 kB touched (docs/performance.md, "Page faults"); with these settings the step makes none. The cost: up
    to 256 MB of freed memory stays counted in the process's RSS, which suits a command that trains and exits, not a
    long-running server. Process-wide and for the rest of the process; glibc on Linux only (elsewhere nothing
    changes and this returns False).
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
