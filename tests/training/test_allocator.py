"""The training command's allocator settings: freed memory is reused instead of faulted in again every step."""

from __future__ import annotations

import subprocess
import sys

import pytest

# 100 buffers of 1 MB, filled and freed, five times. With glibc's initial settings (blocks from 128 kB mapped on
# their own, 128 kB of free heap top kept) each round faults its pages in again. glibc moves those thresholds as a
# process frees memory, so how a given process behaves depends on its history (here on PYTHONHASHSEED, through the
# order of imports): both runs set the initial values first, to be repeatable.
ROUNDS = """
import ctypes, resource, sys, torch
from vae_hub.allocator import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, keep_freed_memory
mallopt = ctypes.CDLL("libc.so.6").mallopt
applied = bool(mallopt(M_MMAP_THRESHOLD, 128 * 1024) and mallopt(M_TRIM_THRESHOLD, 128 * 1024))
if sys.argv[1] == "tuned":
    applied = keep_freed_memory()
def round_():
    buffers = [torch.empty(2**18).fill_(1.0) for _ in range(100)]
    del buffers
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    round_()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True).stdout
    applied, count = out.split()
    return applied == "True", int(count)


def test_kept_freed_memory_spares_the_page_faults_of_reallocating_it():
    applied, tuned = faults("tuned")
    if not applied:
        pytest.skip("not glibc: the allocator is left as it is")
    _, default = faults("default")
    assert default > 4 * 100 * 2**20 / 4096 / 2, "glibc's initial settings fault the freed buffers in again"
    assert tuned < default / 20


def test_the_console_command_sets_the_process_up_before_training_only(monkeypatch, tmp_path):
    from vae_hub import cli
    from vae_hub.cli import train as train_command

    calls = []

    def exit_(code):
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", exit_)
    monkeypatch.setattr(train_command, "keep_freed_memory", lambda: calls.append("allocator"))
    monkeypatch.setattr(train_command, "flush_denormals_in_this_process", lambda: calls.append("denormals"))
    monkeypatch.setattr(train_command, "train", lambda config: calls.append("train"))
    with pytest.raises(SystemExit) as exited:
        cli.entry(["train", "--output-dir", str(tmp_path / "run"), "--epochs", "1"])
    assert exited.value.code == 0
    assert calls == ["allocator", "denormals", "train"]
    calls.clear()  # main() alone, as a program embedding vae-hub calls it, leaves its process as it was
    assert cli.main(["train", "--output-dir", str(tmp_path / "run"), "--epochs", "1"]) == 0
    assert calls == ["train"]


def test_the_console_command_sets_up_an_evaluation_process_too(monkeypatch):
    from vae_hub import cli
    from vae_hub.cli import evaluate as evaluate_command

    calls = []

    def exit_(code):
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", exit_)
    monkeypatch.setattr(evaluate_command, "keep_freed_memory", lambda: calls.append("allocator"))
    monkeypatch.setattr(evaluate_command, "run", lambda args: calls.append("evaluate") or 0)
    with pytest.raises(SystemExit) as exited:
        cli.entry(["evaluate", "a-model"])
    assert exited.value.code == 0
    assert calls == ["allocator", "evaluate"]
