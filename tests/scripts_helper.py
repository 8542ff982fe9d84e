"""Running the scripts in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=ROOT,
    )


def tiny_train_args(data_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    return [
        "--dataset", "mnist", "--data-dir", str(data_dir), "--output-dir", str(out_dir), "--cache-dir",
        str(out_dir.parent / "cache"), "--no-download", "--no-progress", "--hidden-dim", "32", "--latent-dim", "4",
        "--batch-size", "32", "--eval-k", "8", *extra,
    ]  # fmt: skip
