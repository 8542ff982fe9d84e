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

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import DataError
from ..limits import max_data_bytes, size_text
from .cache import cache_key, read_cache, write_cache
from .hf_datasets import is_save_to_disk, load_hf, parquet_files
from .image_data import ImageData, Splits
from .image_folder import Skipped, decode_all, list_image_folder, scan_headers
from .named_sets import DATASETS, default_cache_dir, load_dataset
from .spec import DataSpec


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


def load_splits(spec: DataSpec, progress: bool = True) -> Splits:
    """The train and test images a ``DataSpec`` asks for: a named data set, a folder of pictures, or a dataset.

    Decoded folders and datasets are cached on disk, keyed by the files and the decoding settings; a second call
    reads the cache.

    Args:
        spec: The data settings (a ``TrainConfig`` is one).
        progress: Show progress bars while decoding.

    Returns:
        The ``Splits``: uint8 images, labels, and what the card says about them.

    Raises:
        DataError: Saying what is wrong (``DataNotFoundError`` for missing data).
    """
    kind = source_kind(spec.dataset)
    if kind == "named":
        return _named(spec)
    key = cache_key(spec, kind)
    cache_file = Path(spec.cache_dir or default_cache_dir()).expanduser() / "decoded" / f"{key}.safetensors"
    if cache_file.is_file():
        print(f"decoded images from the cache: {cache_file}")
        return read_cache(cache_file)
    splits = _from_files(spec, kind, progress)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    write_cache(cache_file, splits)
    return splits


def _named(spec: DataSpec) -> Splits:
    if spec.image_size or spec.channels:
        raise DataError(f"--image-size and --channels are for your own images; {spec.dataset} has a fixed shape")
    info = DATASETS[spec.dataset]
    kwargs = dict(download=spec.download, cache_dir=spec.cache_dir)
    train = load_dataset(spec.dataset, spec.data_dir, train=True, **kwargs)
    test = load_dataset(spec.dataset, spec.data_dir, train=False, **kwargs)
    return Splits(train, test, info.name, info.display_name, info.hub_id, "its test split", info.train_size)


# --- your own images -------------------------------------------------------------------------------------------
def _from_files(spec: DataSpec, kind: str, progress: bool) -> Splits:
    skipped = Skipped()
    if kind == "folder":
        root = Path(spec.dataset).expanduser().resolve()
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
        if spec.test_split is not None:
            raise DataError("--test-split is for Hugging Face datasets; a folder's test images are held out")
    else:
        hf = load_hf(
            spec.dataset,
            kind,
            split=spec.split,
            test_split=spec.test_split,
            image_column=spec.image_column,
            label_column=spec.label_column,
            download=spec.download,
        )
        train_table = (hf.train.names, hf.train.sources, hf.train.labels)
        test_table = (hf.test.names, hf.test.sources, hf.test.labels) if hf.test else None
        class_names = hf.class_names
        if hf.train.labels is not None and class_names is None:
            class_names = names_of(hf.train.labels)
        name = spec.dataset if kind == "hub" else Path(spec.dataset).expanduser().resolve().name
        hub_id = spec.dataset if kind == "hub" else None
        split_from = f"the {hf.split!r} split of {name}"
    if spec.strict_data and skipped:
        raise DataError(f"--strict-data: {skipped.report()}")

    names, sources, labels = train_table
    keep, sizes, grey = scan_headers(names, sources, skipped, progress=progress)
    if not keep:
        raise DataError(f"none of the {len(names)} file(s) in {name} is a readable image; {skipped.report()}")
    size = spec.image_size or common_side(names, keep, sizes)
    channels = spec.channels or (1 if all(grey) else 3)
    n_test = len(test_table[0]) if test_table else 0
    check_memory(len(keep) + n_test, channels, size)
    images, kept = decode_all([names[i] for i in keep], [sources[i] for i in keep], channels, size, skipped,
                              progress=progress)  # fmt: skip
    kept = [keep[i] for i in kept]
    train = ImageData(images, label_tensor(labels, kept, class_names), class_names)

    if test_table is None:
        train, test = hold_out(train, spec.test_fraction, spec.seed)
        split_note = (
            f"a random {spec.test_fraction:.0%} of {split_from} ({len(test):,} of {len(train) + len(test):,} "
            f"images, seed {spec.seed}) held out from training"
        )
    else:
        t_names, t_sources, t_labels = test_table
        t_images, t_kept = decode_all(t_names, t_sources, channels, size, skipped, progress=progress)
        test = ImageData(t_images, label_tensor(t_labels, t_kept, class_names), class_names)
        split_note = f"its {spec.test_split or 'test'!r} split ({len(test):,} images)"
    if spec.strict_data and skipped:
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
