"""Which images a command about a trained model uses: the data its folder says it was trained on, or the data named.

Shared by ``vae-hub evaluate`` (the test split) and ``vae-hub sample --sampler gmm`` (the training split).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from ..data.image_data import fixed_binarization, to_unit
from ..data.named_sets import DATASETS, load_dataset
from ..data.sources import load_splits
from ..data.spec import DataSpec
from ..models.base import BaseVAE


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The options that choose the data (default: what the model folder's metrics.json says)."""
    p.add_argument(
        "--dataset", default=None,
        help=f"{', '.join(DATASETS)}, a folder of images or a Hugging Face dataset, as for vae-hub train "
        "(default: the data the model folder's metrics.json says it was trained on, with its held-out test images)",
    )  # fmt: skip
    p.add_argument("--data-dir", default=None, help="where a named data set is (default: as trained, else 'data')")
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
    p.add_argument("--no-download", dest="download", action="store_false", help="never try to download data")
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


def model_images(
    args: argparse.Namespace, model: BaseVAE, *, split: str = "test", limit: int | None = None, binarize: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, str, str]:
    """(images in [0, 1], labels, the data set's name, where they come from) of ``split`` ("train" or "test"):
    the data the model folder says it was trained on, unless ``args`` names other data; at most ``limit``."""
    recorded = trained_on(args.model)
    if args.dataset is None and recorded is None:
        raise ValueError(f"give --dataset: {args.model} has no metrics.json saying what it was trained on")
    same = recorded is not None and args.dataset in (None, recorded.dataset)
    spec = recorded if same else DataSpec(dataset=args.dataset)
    given = {"data_dir": args.data_dir, "test_fraction": args.test_fraction, "seed": args.data_seed,
             "image_column": args.image_column, "label_column": args.label_column, "split": args.split,
             "test_split": args.test_split}  # fmt: skip
    spec = replace(spec, **{k: v for k, v in given.items() if v is not None}, download=args.download)
    spec.binarize = binarize or spec.binarize
    if spec.dataset in DATASETS:
        data = load_dataset(spec.dataset, spec.data_dir, train=split == "train", download=spec.download,
                            cache_dir=spec.cache_dir)  # fmt: skip
        images, labels, note = data.images, data.labels, f"its {split} split"
    else:
        c, h, _ = model.image_shape
        splits = load_splits(replace(spec, image_size=h, channels=c), progress=args.progress)
        chosen = splits.train if split == "train" else splits.test
        images, labels, note = chosen.images, chosen.labels, splits.split_note
    images = to_unit(images[:limit].to(args.device))
    labels = labels[:limit].to(args.device) if labels is not None and len(labels) else None
    if tuple(images.shape[1:]) != model.image_shape:
        raise ValueError(
            f"{spec.dataset} images are {tuple(images.shape[1:])} but the model expects {model.image_shape}"
        )
    if model.conditional and labels is None:
        raise ValueError(f"{args.model} is a conditional model: its images need labels, and {spec.dataset} has none")
    if spec.binarize:
        images = fixed_binarization(images)
    return images, labels, spec.dataset, note
