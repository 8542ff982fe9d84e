"""Training timed as a user runs it: each loop a whole process (interpreter, imports, data, epochs, output).

The canonical loop is ``reference.py`` run as a script (it imports torch and torchvision only); vae-hub is
``python -m vae_hub train`` with its defaults (``--eval-k 0``: the reference computes no NLL), plus the variants the
issue asks about. Runs are interleaved (reference, vae-hub, variants, then again), so that a machine's slow spell
hits every loop alike; each figure is the fastest of the repeats, as timeit reports.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ...precision import resolve_mixed_precision
from . import reference
from .flops import SIZES, epoch_floor_seconds, training_flops
from .sections import data_source
from .timing import peak_rss_mb, read_peaks

# loop name -> extra `vae-hub train` flags (the reference loop has none)
VARIANTS = {
    "mlp": {
        "vae-hub": [],
        "vae-hub --mixed-precision no": ["--mixed-precision", "no"],
        "vae-hub --no-fused-step": ["--no-fused-step"],
    },
    "conv": {"vae-hub": [], "vae-hub --mixed-precision no": ["--mixed-precision", "no"]},
}


def size_flags(model: str) -> list[str]:
    """``SIZES[model]`` as ``vae-hub train`` flags."""
    return [item for name, value in SIZES[model].items() for item in (f"--{name.replace('_', '-')}", str(value))]


def loop_precision(model: str, loop: str) -> str:
    """The precision a loop computes in: fp32 for the reference, else what ``vae-hub train`` picks."""
    if loop == "reference":
        return "fp32"
    flags = VARIANTS[model][loop]
    chosen = flags[flags.index("--mixed-precision") + 1] if "--mixed-precision" in flags else "auto"
    resolved = resolve_mixed_precision(chosen, cpu=True)
    return {"no": "fp32"}.get(resolved, resolved)


def peak_rss_of(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``: (wall seconds, its own peak RSS in MB, its output); raises if it fails.

    The peak is the process's VmHWM, read from /proc every 20 ms while it runs: ``wait4``'s ru_maxrss would also
    count the short-lived helpers a process forks (``ldconfig -p`` when torch is imported, ``uname -p``), whose
    RSS right after the fork is their parent's.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0.0]

    def watch() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], peak_rss_mb(process.pid) if Path(f"/proc/{process.pid}").exists() else 0.0)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - start
    watcher.join()
    text = output.decode(errors="replace")
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed with code {process.returncode}:\n{text[-3000:]}")
    return seconds, peak[0] if peak[0] > 0 else float("nan"), text


def one_run(model: str, loop: str, root: Path, epochs: int, workdir: Path) -> dict[str, Any]:
    """One whole process of ``loop``: seconds, peak RSS, test loss after the last epoch, per-epoch times."""
    out = workdir / f"{model}-{loop.replace(' ', '_')}"
    if loop == "reference":
        command = [sys.executable, reference.__file__, str(root), "--model", model, "--epochs", str(epochs),
                   "--json", str(out) + ".json"]  # fmt: skip
    else:
        command = [sys.executable, "-m", "vae_hub", "train", "--model", model, "--dataset", "fashion-mnist",
                   "--data-dir", str(root), "--cache-dir", str(workdir / "cache"), "--output-dir", str(out),
                   "--epochs", str(epochs), "--eval-k", "0", "--no-progress", *size_flags(model),
                   *VARIANTS[model][loop]]  # fmt: skip
    seconds, peak, _ = peak_rss_of(command)
    if loop == "reference":
        history = json.loads(Path(str(out) + ".json").read_text())
        epoch_seconds = [h["train_seconds"] + h["test_seconds"] for h in history]
    else:
        history = json.loads((out / "metrics.json").read_text())["history"]
        epoch_seconds = [
            b["seconds"] - a for a, b in zip([0.0] + [h["seconds"] for h in history], history, strict=False)
        ]
    return {"seconds": seconds, "peak_rss_mb": peak, "test_loss": history[-1]["test_loss"],
            "epoch_seconds": epoch_seconds}  # fmt: skip


def compare(model: str, data_dir: str | None, epochs: int, repeats: int, smoke: bool) -> dict[str, Any]:
    """Every loop for ``model`` (mlp | conv), ``repeats`` times interleaved; the fastest run of each and ratios."""
    loops = ["reference", *VARIANTS[model]]
    runs: dict[str, list[dict[str, Any]]] = {loop: [] for loop in loops}
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
        root, source, (n_train, n_test) = data_source(data_dir, Path(tmp), smoke)
        lower = sorted({loop_precision(model, loop) for loop in loops} - {"fp32"})
        readings: dict[str, list[float]] = {precision: [] for precision in ["fp32", *lower]}
        for repeat in range(repeats):
            for loop in loops:
                read_peaks(readings)  # between the runs, so that the peak sees the spells they saw
                print(f"  {model}: {loop} (run {repeat + 1} of {repeats}) ...", file=sys.stderr, flush=True)
                runs[loop].append(one_run(model, loop, root, epochs, Path(tmp)))
        read_peaks(readings)
    peaks = {precision: statistics.median(values) for precision, values in readings.items()}
    flops = training_flops(model)
    result: dict[str, Any] = {"model": model, "data": source, "epochs": epochs, "repeats": repeats, "flops": flops,
                              "matmul_peak_gflops": peaks, "matmul_peak_readings": readings, "loops": {}}  # fmt: skip
    for loop in loops:
        best = min(runs[loop], key=lambda r: r["seconds"])
        result["loops"][loop] = {
            "seconds": best["seconds"],
            "all_seconds": [r["seconds"] for r in runs[loop]],
            "median_seconds": statistics.median(r["seconds"] for r in runs[loop]),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[loop]),
            "test_loss": best["test_loss"],
            "epoch_seconds": best["epoch_seconds"],
        }
        precision = loop_precision(model, loop)
        floor = epoch_floor_seconds(flops, n_train, n_test, peaks[precision])
        median_epoch = statistics.median(t for r in runs[loop] for t in r["epoch_seconds"])
        result["loops"][loop] |= {"precision": precision, "epoch_floor_seconds": floor,
                                  "median_epoch_seconds": median_epoch,
                                  "epoch_over_floor": median_epoch / floor}  # fmt: skip
    ref = result["loops"]["reference"]
    for loop in loops[1:]:
        entry = result["loops"][loop]
        entry["speedup"] = ref["seconds"] / entry["seconds"]
        entry["median_speedup"] = ref["median_seconds"] / entry["median_seconds"]
        entry["loss_vs_reference"] = entry["test_loss"] - ref["test_loss"]
    return result
