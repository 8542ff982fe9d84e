"""Evaluate a vae-hub model (local folder or Hub repo id) on a data set's test split.

Usage: python scripts/evaluate.py runs/vae --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist --k 1000
Prints a table and writes the metrics as JSON (default: eval_<dataset>.json in the current folder).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

import vae_hub
from vae_hub.data import DATASETS, DataNotFoundError, load_dataset
from vae_hub.evaluation import evaluate, format_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a model folder or a Hub repo id (user/name)")
    p.add_argument("--dataset", choices=list(DATASETS), required=True)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--k", type=int, default=1000, help="importance samples for the NLL (0: skip; 5000 fits in memory)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--max-images", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--binarize", action="store_true", help="evaluate on a fixed binarization (models trained so)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-download", dest="download", action="store_false")
    p.add_argument("--output", default=None, help="JSON file to write (default eval_<dataset>.json)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    if args.k < 0 or args.batch_size < 1:
        p.error("--k must be >= 0 and --batch-size >= 1")
    try:
        model = vae_hub.from_pretrained(args.model, map_location=args.device)
        images = load_dataset(args.dataset, args.data_dir, train=False, download=args.download).images
        images = images[: args.max_images].to(args.device)
        if tuple(images.shape[1:]) != model.image_shape:
            raise ValueError(
                f"{args.dataset} images are {tuple(images.shape[1:])} but the model expects {model.image_shape}"
            )
        if args.binarize:
            images = torch.bernoulli(images, generator=torch.Generator(args.device).manual_seed(12345))
        start = time.perf_counter()
        metrics = evaluate(model, images, k=args.k, batch_size=args.batch_size, seed=args.seed, progress=args.progress)
    except (vae_hub.CheckpointError, DataNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    metrics |= {"model": args.model, "dataset": args.dataset, "seconds": round(time.perf_counter() - start, 2)}
    print(format_table(metrics))
    print(f"evaluated in {metrics['seconds']:.1f} s")
    output = args.output or f"eval_{args.dataset}.json"
    with open(output, "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
