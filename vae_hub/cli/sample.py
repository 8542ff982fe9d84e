"""Sample an image grid from the prior of a vae-hub model (a local folder or a Hub repo id).

Example: vae-hub sample runs/vae --n 64 --temperature 0.8 --seed 0 --out samples.png
"""

from __future__ import annotations

import argparse

from ..errors import CheckpointError
from ..evaluation.plots import save_samples
from ..models.base import from_pretrained
from .options import error


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a folder written by save_pretrained, or a Hub repo id (user/name)")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--temperature", type=float, default=1.0, help="prior scale; below 1 gives cleaner samples")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default="samples.png", help="PNG file to write")


def run(args: argparse.Namespace) -> int:
    try:
        model = from_pretrained(args.model)
        save_samples(model, args.out, n=args.n, temperature=args.temperature, seed=args.seed, padding=1)
    except (CheckpointError, ValueError, OSError) as e:
        error(str(e))
        return 2
    print(f"wrote {args.n} samples from {args.model} to {args.out}")
    return 0
