"""Seconds of a whole ``vae-hub train`` process outside its epochs (interpreter, imports, data, the model folder),
with today's checkout and with the code at a git revision, interleaved.

Run from the root of a checkout: python benchmarks/startup_seconds.py DATA_DIR --against REV [--rounds 4]
(DATA_DIR holds Fashion-MNIST; prefix ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
to cap the CPU at AVX2). Each run trains the MLP VAE for one epoch with the benchmark's settings; the time outside
the epochs is the process's wall time less the run's ``seconds`` in its ``metrics.json`` (the epoch and its test
pass). REV is checked out in a temporary git worktree; both use this environment's packages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def outside_epochs(checkout: Path, data_dir: str, workdir: Path) -> tuple[float, float]:
    """One 1-epoch ``python -m vae_hub train`` run from ``checkout``: (seconds outside the epoch, whole seconds)."""
    out = workdir / "run"
    command = [sys.executable, "-m", "vae_hub", "train", "--model", "mlp", "--dataset", "fashion-mnist",
               "--data-dir", data_dir, "--cache-dir", str(workdir / "cache"), "--output-dir", str(out),
               "--epochs", "1", "--eval-k", "0", "--no-progress"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=checkout, check=True, capture_output=True)
    whole = time.perf_counter() - start
    epochs = json.loads((out / "metrics.json").read_text())["history"][-1]["seconds"]
    return whole - epochs, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--against", metavar="REV", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vae-hub-startup-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old), args.against], cwd=REPO, check=True)
        try:
            checkouts = {"today": REPO, args.against: old}
            for checkout in checkouts.values():  # python -m puts the checkout first on sys.path: its package runs
                found = subprocess.run([sys.executable, "-c", "import vae_hub; print(vae_hub.__file__)"],
                                       cwd=checkout, check=True, capture_output=True, text=True).stdout  # fmt: skip
                if not Path(found.strip()).resolve().is_relative_to(checkout.resolve()):
                    raise SystemExit(f"{checkout} imports vae_hub from {found.strip()}, not its own")
            outside: dict[str, list[float]] = {name: [] for name in checkouts}
            outside_epochs(REPO, args.data_dir, Path(tmp))  # the decoded-data cache, written once
            for _ in range(args.rounds):
                for name, checkout in checkouts.items():
                    seconds, whole = outside_epochs(checkout, args.data_dir, Path(tmp))
                    outside[name].append(seconds)
                    print(f"{name:>12}: {seconds:.2f} s outside the epoch, {whole:.2f} s in all", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, check=False)
    for name, values in outside.items():
        print(f"{name:>12}: outside the epoch fastest {min(values):.2f} s, median {statistics.median(values):.2f} s")


if __name__ == "__main__":
    main()
