"""Evaluate a vae-hub model (a local folder or a Hub repo id) on a data set's test split.

Example: vae-hub evaluate runs/vae --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist --k 1000
Prints a table and writes the metrics as JSON (default: eval_<dataset>.json in the current folder).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ..base import from_pretrained
from ..data import DATASETS, DataNotFoundError, fixed_binarization, load_dataset, to_unit
from ..errors import CheckpointError
from ..evaluation import evaluate, format_table
from ..metrics import EVAL_PRECISIONS
from .options import error


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model folder or a Hub repo id (user/name)")
    p.add_argument("--dataset", choices=list(DATASETS), required=True, help="whose test split to evaluate on")
    p.add_argument("--data-dir", default="data", help="where the data set is (as for vae-hub train)")
    p.add_argument("--k", type=int, default=1000, help="importance samples for the NLL (0: skip; 5000 fits in memory)")
    p.add_argument(
        "--precision",
        choices=EVAL_PRECISIONS,
        default="fp32",
        help="the NLL's decoder: bf16 is ~2x faster on CPUs with native bf16, within hundredths of a nat",
    )
    p.add_argument("--batch-size", type=int, default=500, help="images per batch")
    p.add_argument("--max-images", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--binarize", action="store_true", help="evaluate on a fixed binarization (models trained so)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled z")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where to run")
    p.add_argument("--no-download", dest="download", action="store_false", help="never try to download data")
    p.add_argument("--output", default=None, help="JSON file to write (default eval_<dataset>.json)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.k < 0 or args.batch_size < 1:
        error("--k must be >= 0 and --batch-size >= 1")
        return 2
    try:
        model = from_pretrained(args.model, map_location=args.device)
        images = load_dataset(args.dataset, args.data_dir, train=False, download=args.download).images
        images = to_unit(images[: args.max_images].to(args.device))
        if tuple(images.shape[1:]) != model.image_shape:
            raise ValueError(
                f"{args.dataset} images are {tuple(images.shape[1:])} but the model expects {model.image_shape}"
            )
        if args.binarize:
            images = fixed_binarization(images)
        start = time.perf_counter()
        metrics = evaluate(model, images, k=args.k, batch_size=args.batch_size, seed=args.seed, progress=args.progress,
                           precision=args.precision)  # fmt: skip
    except (CheckpointError, DataNotFoundError, ValueError) as e:
        error(str(e))
        return 2
    metrics |= {"model": args.model, "dataset": args.dataset, "seconds": round(time.perf_counter() - start, 2)}
    print(format_table(metrics))
    print(f"evaluated in {metrics['seconds']:.1f} s")
    output = args.output or f"eval_{args.dataset}.json"
    with open(output, "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"wrote {output}")
    return 0
