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
from dataclasses import replace
from pathlib import Path

import torch

from ..data.image_data import fixed_binarization, to_unit
from ..data.named_sets import DATASETS, load_dataset
from ..data.sources import load_splits
from ..data.spec import DataSpec
from ..errors import CheckpointError, DataError, DataNotFoundError
from ..evaluation.metrics import EVAL_PRECISIONS
from ..evaluation.summary import evaluate, format_table
from ..models.base import BaseVAE, from_pretrained
from ..precision import nll_precision
from .options import error


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model folder or a Hub repo id (user/name)")
    p.add_argument(
        "--dataset", default=None,
        help=f"{', '.join(DATASETS)}, a folder of images or a Hugging Face dataset, as for vae-hub train "
        "(default: the data the model folder's metrics.json says it was trained on, with its held-out test images)",
    )  # fmt: skip
    p.add_argument("--data-dir", default=None, help="where a named data set is (default: as trained, else 'data')")
    p.add_argument("--k", type=int, default=1000, help="importance samples for the NLL (0: skip; 5000 fits in memory)")
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
    p.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="your own images without a test split: the share held out (default: as trained, else 0.1)",
    )
    p.add_argument(
        "--data-seed",
        type=int,
        default=None,
        help="the seed that held the test images out (default: the training seed, else 0)",
    )
    for flag in ("--image-column", "--label-column", "--split", "--test-split"):
        p.add_argument(flag, default=None, help="a Hugging Face dataset's, as for vae-hub train")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where to run")
    p.add_argument("--no-download", dest="download", action="store_false", help="never try to download data")
    p.add_argument("--output", default=None, help="JSON file to write (default eval_<dataset>.json)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def trained_on(model: str) -> DataSpec | None:
    """The data settings a local model folder was trained with (its metrics.json), or None when it has none."""
    path = Path(model) / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    # folders written before 0.2.0 keep the data settings among the flat training config
    stored = metrics.get("data_spec", metrics.get("config"))
    return DataSpec.from_json(stored) if isinstance(stored, dict) else None


def test_images(args: argparse.Namespace, model: BaseVAE) -> tuple[torch.Tensor, torch.Tensor | None, str, str]:
    """(images in [0, 1], labels, the data set's name, where the test images come from)."""
    recorded = trained_on(args.model)
    if args.dataset is None and recorded is None:
        raise ValueError(f"give --dataset: {args.model} has no metrics.json saying what it was trained on")
    same = recorded is not None and args.dataset in (None, recorded.dataset)
    spec = recorded if same else DataSpec(dataset=args.dataset)
    given = {"data_dir": args.data_dir, "test_fraction": args.test_fraction, "seed": args.data_seed,
             "image_column": args.image_column, "label_column": args.label_column, "split": args.split,
             "test_split": args.test_split}  # fmt: skip
    spec = replace(spec, **{k: v for k, v in given.items() if v is not None}, download=args.download)
    spec.binarize = args.binarize or spec.binarize
    if spec.dataset in DATASETS:
        data = load_dataset(spec.dataset, spec.data_dir, train=False, download=spec.download, cache_dir=spec.cache_dir)
        images, labels, note = data.images, data.labels, "its test split"
    else:
        c, h, _ = model.image_shape
        splits = load_splits(replace(spec, image_size=h, channels=c), progress=args.progress)
        images, labels, note = splits.test.images, splits.test.labels, splits.split_note
    images = to_unit(images[: args.max_images].to(args.device))
    labels = labels[: args.max_images].to(args.device) if labels is not None and len(labels) else None
    if tuple(images.shape[1:]) != model.image_shape:
        raise ValueError(
            f"{spec.dataset} images are {tuple(images.shape[1:])} but the model expects {model.image_shape}"
        )
    if model.conditional and labels is None:
        raise ValueError(
            f"{args.model} is a conditional model: its test images need labels, and {spec.dataset} has none"
        )
    if spec.binarize:
        images = fixed_binarization(images)
    return images, labels, spec.dataset, note


def run(args: argparse.Namespace) -> int:
    if args.k < 0 or args.batch_size < 1:
        error("--k must be >= 0 and --batch-size >= 1")
        return 2
    try:
        model = from_pretrained(args.model, map_location=args.device)
        images, labels, dataset, note = test_images(args, model)
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
