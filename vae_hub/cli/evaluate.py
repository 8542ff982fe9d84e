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
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from ..base import BaseVAE, from_pretrained
from ..config import TrainConfig
from ..data import DATASETS, DataNotFoundError, fixed_binarization, load_dataset, to_unit
from ..data_sources import load_splits
from ..errors import CheckpointError
from ..evaluation import evaluate, format_table
from ..image_files import DataError
from ..metrics import EVAL_PRECISIONS
from ..precision import nll_precision
from .options import error

DATA_FIELDS = ("dataset", "data_dir", "image_column", "label_column", "split", "test_split", "test_fraction",
               "seed", "binarize", "cache_dir")  # fmt: skip  # what decides a run's test images


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


def trained_on(model: str) -> dict[str, Any]:
    """The data settings a local model folder was trained with (its metrics.json), or {}."""
    path = Path(model) / "metrics.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")).get("config", {}) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in config.items() if k in DATA_FIELDS} if isinstance(config, dict) else {}


def test_images(args: argparse.Namespace, model: BaseVAE) -> tuple[torch.Tensor, torch.Tensor | None, str, str]:
    """(images in [0, 1], labels, the data set's name, where the test images come from)."""
    recorded = trained_on(args.model)
    if args.dataset is None and not recorded:
        raise ValueError(f"give --dataset: {args.model} has no metrics.json saying what it was trained on")
    same = args.dataset is None or args.dataset == recorded.get("dataset")
    settings = dict(recorded) if same else {}
    given = {"dataset": args.dataset, "data_dir": args.data_dir, "test_fraction": args.test_fraction,
             "seed": args.data_seed, "image_column": args.image_column, "label_column": args.label_column,
             "split": args.split, "test_split": args.test_split}  # fmt: skip
    settings |= {k: v for k, v in given.items() if v is not None}
    settings.setdefault("data_dir", "data")
    settings["binarize"] = args.binarize or settings.get("binarize", False)
    dataset = settings["dataset"]
    if dataset in DATASETS:
        data = load_dataset(dataset, settings["data_dir"], train=False, download=args.download,
                            cache_dir=settings.get("cache_dir"))  # fmt: skip
        images, labels, note = data.images, data.labels, "its test split"
    else:
        c, h, _ = model.image_shape
        known = {f.name for f in fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in settings.items() if k in known and k != "binarize"},
                             image_size=h, channels=c, download=args.download, progress=args.progress)  # fmt: skip
        splits = load_splits(config)
        images, labels, note = splits.test.images, splits.test.labels, splits.split_note
    images = to_unit(images[: args.max_images].to(args.device))
    labels = labels[: args.max_images].to(args.device) if labels is not None and len(labels) else None
    if tuple(images.shape[1:]) != model.image_shape:
        raise ValueError(f"{dataset} images are {tuple(images.shape[1:])} but the model expects {model.image_shape}")
    if model.conditional and labels is None:
        raise ValueError(f"{args.model} is a conditional model: its test images need labels, and {dataset} has none")
    if settings["binarize"]:
        images = fixed_binarization(images)
    return images, labels, dataset, note


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
