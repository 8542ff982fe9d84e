"""Evaluate a vae-hub model (a local folder or a Hub repo id) on a test split.

Examples: vae-hub evaluate runs/vae --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist --k 1000
          vae-hub evaluate runs/shapes                  # the data it was trained on, the same held-out test images
          vae-hub evaluate runs/vae --dataset photos/   # a folder of images (or a Hugging Face dataset), as in train
Prints a table and writes the metrics as JSON (default: eval_<dataset>.json in the current folder).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..allocator import keep_freed_memory
from ..errors import CheckpointError, DataError, DataNotFoundError
from ..evaluation.metrics import EVAL_PRECISIONS
from ..evaluation.summary import evaluate, format_table
from ..models.loading import from_pretrained
from ..precision import nll_precision
from .model_data import add_data_options, model_images
from .options import error


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model folder or a Hub repo id (user/name)")
    p.add_argument(
        "--k",
        type=int,
        default=1000,
        help="importance samples for the NLL (0: skip; 5000 fits in memory; a VQ-VAE reports its bound instead)",
    )
    p.add_argument(
        "--precision",
        choices=("auto", *EVAL_PRECISIONS),
        default="auto",
        help="the NLL's decoder (auto: bf16 where the CPU or GPU computes it natively, ~2x faster and within "
        "hundredths of a nat of fp32, else fp32)",
    )
    p.add_argument("--batch-size", type=int, default=500, help="images per batch")
    p.add_argument("--max-images", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--binarize", action="store_true", help="evaluate on a fixed binarization (models trained so)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled z")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where to run")
    p.add_argument("--output", default=None, help="JSON file to write (default eval_<dataset>.json)")
    add_data_options(p)


def prepare_process() -> None:
    """Made by the console command (``cli.entry``) before anything else: the NLL's chunks of decoded logits reuse
    freed memory instead of faulting fresh pages in (``keep_freed_memory``; ~5% of a k = 1000 NLL)."""
    keep_freed_memory()


def run(args: argparse.Namespace) -> int:
    if args.k < 0 or args.batch_size < 1:
        error("--k must be >= 0 and --batch-size >= 1")
        return 2
    try:
        model = from_pretrained(args.model, map_location=args.device)
        images, labels, dataset, note = model_images(args, model, limit=args.max_images, binarize=args.binarize)
        print(f"test images: {len(images):,} from {dataset}, {note}")
        start = time.perf_counter()
        metrics = evaluate(model, images, labels=labels, k=args.k, batch_size=args.batch_size, seed=args.seed,
                           progress=args.progress, precision=nll_precision(args.precision, model.device))  # fmt: skip
    except (CheckpointError, DataNotFoundError, DataError, ValueError) as e:
        error(str(e))
        return 2
    metrics |= {"model": args.model, "dataset": dataset, "test_images": note,
                "seconds": round(time.perf_counter() - start, 2)}  # fmt: skip
    print(format_table(metrics))
    print(f"evaluated in {metrics['seconds']:.1f} s")
    output = args.output or f"eval_{Path(dataset).name or 'data'}.json"
    with open(output, "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"wrote {output}")
    return 0
