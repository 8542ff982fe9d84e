"""Training data from anywhere: a named data set, a folder of images, or a Hugging Face dataset, as two splits.

``--dataset`` is resolved in this order: one of the named data sets (``mnist``, ``fashion-mnist``, ``kmnist``,
``cifar10``); an existing path: a folder written by ``datasets``' ``save_to_disk``, parquet files (a file or a
folder of them), or a folder of images (class labels from top-level sub-folder names, when every image has one);
otherwise a Hugging Face Hub dataset id (downloaded by ``datasets`` when online).

Pictures are decoded once into uint8 tensors of one shape and cached (keyed by the source's files, or the
dataset's fingerprint, and the settings), so a second run starts at once. Without a test split, a seeded
``test_fraction`` of the images is held out.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .data import DATASETS, ImageData, default_cache_dir, load_dataset
from .fileio import atomic_write
from .hf_data import is_save_to_disk, load_hf, parquet_files
from .image_files import DataError, Skipped, decode_all, list_image_folder, scan_headers
from .limits import max_data_bytes, size_text

if TYPE_CHECKING:
    from .config import TrainConfig

CACHE_FORMAT = 1  # bump when what is cached changes


@dataclass
class Splits:
    """The train and test images (uint8) and what the model card says about them."""

    train: ImageData
    test: ImageData
    name: str  # a short name: the data set's, the folder's, the Hub id
    display_name: str  # for the card's prose
    hub_id: str | None  # the dataset's Hub id, when there is one
    split_note: str  # where the test images come from
    train_size: int  # images in the whole training split (for a named data set: the official one)
    skipped: str = ""  # the report of files left out, if any

    @property
    def class_names(self) -> list[str] | None:
        return self.train.class_names


def source_kind(dataset: str) -> str:
    """'named', 'disk', 'parquet', 'folder' or 'hub'."""
    if dataset in DATASETS:
        return "named"
    path = Path(dataset).expanduser()
    if path.exists():
        if is_save_to_disk(path):
            return "disk"
        if parquet_files(path):
            return "parquet"
        if path.is_dir():
            return "folder"
        raise DataError(
            f"--dataset {dataset} is a file; expected a folder of images, a folder written by save_to_disk, "
            "or .parquet files"
        )
    return "hub"


def load_splits(config: TrainConfig) -> Splits:
    """The train and test images that ``config`` asks for; raises DataError (or DataNotFoundError) saying why not."""
    kind = source_kind(config.dataset)
    if kind == "named":
        return _named(config)
    key = cache_key(config, kind)
    cache_file = Path(config.cache_dir or default_cache_dir()).expanduser() / "decoded" / f"{key}.safetensors"
    if cache_file.is_file():
        print(f"decoded images from the cache: {cache_file}")
        return read_cache(cache_file)
    splits = _from_files(config, kind)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    write_cache(cache_file, splits)
    return splits


def _named(config: TrainConfig) -> Splits:
    if config.image_size or config.channels:
        raise DataError(f"--image-size and --channels are for your own images; {config.dataset} has a fixed shape")
    info = DATASETS[config.dataset]
    kwargs = dict(download=config.download, cache_dir=config.cache_dir)
    train = load_dataset(config.dataset, config.data_dir, train=True, **kwargs)
    test = load_dataset(config.dataset, config.data_dir, train=False, **kwargs)
    return Splits(train, test, info.name, info.display_name, info.hub_id, "its test split", info.train_size)


# --- your own images -------------------------------------------------------------------------------------------
def _from_files(config: TrainConfig, kind: str) -> Splits:
    skipped = Skipped()
    if kind == "folder":
        root = Path(config.dataset).expanduser().resolve()
        listing = list_image_folder(root)
        for path in listing.odd:
            skipped.add(str(path.relative_to(root)), "not an image file")
        if not listing.files:
            raise DataError(
                f"no images in {root}: expected PNG, JPEG, WebP or BMP files, in it or in sub-folders "
                f"(one per class); found {len(listing.odd)} other file(s)"
            )
        names = [str(p.relative_to(root)) for p in listing.files]
        train_table = (names, list(listing.files), listing.labels)
        test_table, class_names = None, sorted(set(listing.labels)) if listing.labels else None
        name, hub_id, split_from = root.name, None, f"the folder {root.name}"
        if config.test_split is not None:
            raise DataError("--test-split is for Hugging Face datasets; a folder's test images are held out")
    else:
        hf = load_hf(
            config.dataset,
            kind,
            split=config.split,
            test_split=config.test_split,
            image_column=config.image_column,
            label_column=config.label_column,
            download=config.download,
        )
        train_table = (hf.train.names, hf.train.sources, hf.train.labels)
        test_table = (hf.test.names, hf.test.sources, hf.test.labels) if hf.test else None
        class_names = hf.class_names
        if hf.train.labels is not None and class_names is None:
            class_names = names_of(hf.train.labels)
        name = config.dataset if kind == "hub" else Path(config.dataset).expanduser().resolve().name
        hub_id = config.dataset if kind == "hub" else None
        split_from = f"the {hf.split!r} split of {name}"
    if config.strict_data and skipped:
        raise DataError(f"--strict-data: {skipped.report()}")

    names, sources, labels = train_table
    keep, sizes, grey = scan_headers(names, sources, skipped, progress=config.progress)
    if not keep:
        raise DataError(f"none of the {len(names)} file(s) in {name} is a readable image; {skipped.report()}")
    size = config.image_size or common_side(names, keep, sizes)
    channels = config.channels or (1 if all(grey) else 3)
    n_test = len(test_table[0]) if test_table else 0
    check_memory(len(keep) + n_test, channels, size)
    images, kept = decode_all([names[i] for i in keep], [sources[i] for i in keep], channels, size, skipped,
                              progress=config.progress)  # fmt: skip
    kept = [keep[i] for i in kept]
    train = ImageData(images, label_tensor(labels, kept, class_names), class_names)

    if test_table is None:
        train, test = hold_out(train, config.test_fraction, config.seed)
        split_note = (
            f"a random {config.test_fraction:.0%} of {split_from} ({len(test):,} of {len(train) + len(test):,} "
            f"images, seed {config.seed}) held out from training"
        )
    else:
        t_names, t_sources, t_labels = test_table
        t_images, t_kept = decode_all(t_names, t_sources, channels, size, skipped, progress=config.progress)
        test = ImageData(t_images, label_tensor(t_labels, t_kept, class_names), class_names)
        split_note = f"its {config.test_split or 'test'!r} split ({len(test):,} images)"
    if config.strict_data and skipped:
        raise DataError(f"--strict-data: {skipped.report()}")
    if skipped:
        print(f"warning: {skipped.report()}")
    if len(test) == 0:
        raise DataError(f"{name} has no test images left; add images or raise --test-fraction")
    return Splits(train, test, name, name, hub_id, split_note, len(train), skipped.report() if skipped else "")


def common_side(names: list[str], keep: list[int], sizes: list[tuple[int, int]]) -> int:
    """The images' side when all are square and of one size; else a DataError asking for --image-size."""
    distinct: dict[tuple[int, int], str] = {}
    for i, size in zip(keep, sizes, strict=True):
        distinct.setdefault(size, names[i])
    if len(distinct) == 1:
        ((w, h),) = distinct
        if w == h:
            return w
    examples = ", ".join(f"{w}x{h} ({name})" for (w, h), name in list(distinct.items())[:4])
    raise DataError(
        f"the images are not all square and of one size ({len(distinct)} size(s): {examples}); pass --image-size S "
        "to scale and centre-crop them all to SxS"
    )


def names_of(labels: list[Any]) -> list[str]:
    """Class names for plain labels: '0'...'K-1' for integers 0..K-1, else the distinct values, sorted."""
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in labels):
        return [str(i) for i in range(max(labels, default=-1) + 1)]
    return sorted({str(v) for v in labels})


def label_tensor(labels: list[Any] | None, kept: list[int], class_names: list[str] | None) -> Tensor:
    """Class indices of the kept images (-1 everywhere when the data has no labels)."""
    if labels is None or class_names is None:
        return torch.full((len(kept),), -1, dtype=torch.long)
    values = [labels[i] for i in kept]
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if integers and len(class_names) > max(values, default=0):
        return torch.tensor(values, dtype=torch.long)
    index = {name: i for i, name in enumerate(class_names)}
    return torch.tensor([index[str(v)] for v in values], dtype=torch.long)


def hold_out(data: ImageData, fraction: float, seed: int) -> tuple[ImageData, ImageData]:
    """A seeded random ``fraction`` of the images as a test split (at least one), the rest to train on."""
    n = len(data)
    n_test = max(1, round(n * fraction))
    if n - n_test < 1:
        raise DataError(f"{n} image(s) cannot be split into training and test images; add images")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_idx, train_idx = order[:n_test].sort().values, order[n_test:].sort().values
    return tuple(ImageData(data.images[i], data.labels[i], data.class_names) for i in (train_idx, test_idx))


def check_memory(n: int, channels: int, size: int) -> None:
    needed, limit = n * channels * size * size, max_data_bytes()
    if needed > limit:
        raise DataError(
            f"{n:,} images of {channels}x{size}x{size} need {size_text(needed)} in memory (as uint8), above the "
            f"limit of {size_text(limit)} (VAE_HUB_MAX_DATA_MB, default half the RAM): use a smaller --image-size "
            "or fewer images"
        )


# --- the cache -------------------------------------------------------------------------------------------------
SETTINGS = ("image_size", "channels", "test_fraction", "seed", "split", "test_split", "image_column",
            "label_column", "strict_data")  # fmt: skip


def cache_key(config: TrainConfig, kind: str) -> str:
    """A hash of what the decoded images depend on: the source's files (names, sizes, times) and the settings."""
    settings = {name: getattr(config, name) for name in SETTINGS} | {"format": CACHE_FORMAT, "kind": kind}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    if kind == "hub":
        digest.update(config.dataset.encode())
    else:
        root = Path(config.dataset).expanduser().resolve()
        digest.update(str(root).encode())
        for dirpath, dirnames, filenames in os.walk(root) if root.is_dir() else [(root.parent, [], [root.name])]:
            dirnames.sort()
            for name in sorted(filenames):
                stat = (Path(dirpath) / name).stat()
                digest.update(f"{dirpath}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def write_cache(path: Path, splits: Splits) -> None:
    tensors = {
        "train_images": splits.train.images, "train_labels": splits.train.labels,
        "test_images": splits.test.images, "test_labels": splits.test.labels,
    }  # fmt: skip
    meta = {
        "class_names": splits.class_names, "name": splits.name, "display_name": splits.display_name,
        "hub_id": splits.hub_id, "split_note": splits.split_note, "train_size": splits.train_size,
        "skipped": splits.skipped,
    }  # fmt: skip
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata={"vae_hub": json.dumps(meta)}))


def read_cache(path: Path) -> Splits:
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["vae_hub"])
    t = {k: v.clone() for k, v in load_file(str(path)).items()}  # own memory, not a map of the file
    names = meta["class_names"]
    return Splits(
        ImageData(t["train_images"], t["train_labels"], names),
        ImageData(t["test_images"], t["test_labels"], names),
        meta["name"], meta["display_name"], meta["hub_id"], meta["split_note"], meta["train_size"], meta["skipped"],
    )  # fmt: skip
