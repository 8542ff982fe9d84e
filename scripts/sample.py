"""Sample an image grid from the prior of a vae-hub model (a local folder or a Hub repo id).

Usage: python scripts/sample.py path/or/user-name --n 64 --temperature 1.0 --seed 0 --out samples.png
"""

from __future__ import annotations

import argparse
import math
import sys

import torch
from torchvision.utils import save_image

import vae_hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a folder written by save_pretrained, or a Hub repo id (user/name)")
    parser.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--temperature", type=float, default=1.0, help="prior scale; below 1 gives cleaner samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="samples.png", help="PNG file to write (default samples.png)")
    args = parser.parse_args(argv)
    try:
        model = vae_hub.from_pretrained(args.model)
        images = model.sample(args.n, args.temperature, generator=torch.Generator().manual_seed(args.seed))
    except (vae_hub.CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    save_image(images, args.out, nrow=math.ceil(math.sqrt(args.n)), padding=1)
    print(f"wrote {args.n} samples from {args.model} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
