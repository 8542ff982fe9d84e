"""Training data from anywhere: a named data set, a folder of images, or a Hugging Face dataset, as two splits.

``--dataset`` is resolved in this order: one of the named data sets (``mnist``, ``fashion-mnist``, ``kmnist``,
``cifar10``); an existing path: a folder written by ``datasets``' ``save_to_disk``, parquet files (a file or a
folder of them), or a folder of images (class labels from top-level sub-folder names, when every image has one);
otherwise a Hugging Face Hub dataset id (downloaded by ``datasets`` when online).

Pictures are decoded once, in worker processes, into a uint8 file of one shape on disk (keyed by the source's
files and the settings; see ``cache``), which every run and process maps, so a second run starts at once and the
images need not fit in memory. Without a test split, a seeded ``test_fraction`` of the images is held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..errors import DataError
from .cache import DecodedCache, Plan, cache_key
from .hf_datasets import is_save_to_disk, load_hf, names_of, parquet_files
from .image_data import Splits
from .image_folder import Skipped, list_image_folder
from .named_sets import DATASETS, default_cache_dir, load_dataset
from .parallel_decode import (
    FileTable,
    PictureTable,
    decode_chunk,
    decode_tasks,
    default_workers,
    run_tasks,
    scan_headers,
)
from .spec import DataSpec
from .streaming import load_streaming


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

    Folders and datasets are decoded once, in parallel, into a file on disk (keyed by the files and the decoding
    settings) that every later call and every process maps instead of reading it into memory. With
    ``spec.streaming`` a dataset's training images are an ``ImageStream`` instead, read as training goes.

    Args:
        spec: The data settings (a ``TrainConfig`` is one).
        progress: Show progress bars while decoding.

    Returns:
        The ``Splits``: uint8 images, labels, and what the card says about them.

    Raises:
        DataError: Saying what is wrong (``DataNotFoundError`` for missing data).
    """
    kind = source_kind(spec.dataset)
    if spec.streaming:
        return load_streaming(spec, kind)
    if kind == "named":
        return _named(spec)
    cache = DecodedCache(Path(spec.cache_dir or default_cache_dir()).expanduser() / "decoded", cache_key(spec, kind))
    with cache.lock():  # one process decodes; the others of a multi-process run wait, then map the same file
        if cache.complete():
            try:
                splits = cache.open()
            except DataError as e:
                print(f"warning: {e}; decoding again")
            else:
                print(f"decoded images from the cache: {cache.final}")
                return splits
        _decode_into(cache, spec, kind, progress)
        return cache.open()


def _named(spec: DataSpec) -> Splits:
    if spec.image_size or spec.channels:
        raise DataError(f"--image-size and --channels are for your own images; {spec.dataset} has a fixed shape")
    info = DATASETS[spec.dataset]
    kwargs = dict(download=spec.download, cache_dir=spec.cache_dir)
    train = load_dataset(spec.dataset, spec.data_dir, train=True, **kwargs)
    test = load_dataset(spec.dataset, spec.data_dir, train=False, **kwargs)
    return Splits(train, test, info.name, info.display_name, info.hub_id, "its test split", info.train_size)


# --- your own images -------------------------------------------------------------------------------------------
@dataclass
class _Source:
    """A folder or dataset opened for decoding: its tables of pictures, their labels, and what the card says."""

    tables: dict[str, PictureTable]
    labels: dict[str, list[Any] | None]
    class_names: list[str] | None
    name: str
    hub_id: str | None
    split_from: str
    test_split: str | None  # the test table's split name; None when images are held out
    skipped: Skipped


def _open_source(spec: DataSpec, kind: str) -> _Source:
    skipped = Skipped()
    if kind == "folder":
        if spec.test_split is not None:
            raise DataError("--test-split is for Hugging Face datasets; a folder's test images are held out")
        root = Path(spec.dataset).expanduser().resolve()
        listing = list_image_folder(root)
        for path in listing.odd:
            skipped.add(str(path.relative_to(root)), "not an image file")
        if not listing.files:
            raise DataError(
                f"no images in {root}: expected PNG, JPEG, WebP or BMP files, in it or in sub-folders "
                f"(one per class); found {len(listing.odd)} other file(s)"
            )
        class_names = sorted(set(listing.labels)) if listing.labels else None
        return _Source({"train": FileTable(root, listing.files)}, {"train": listing.labels}, class_names, root.name,
                       None, f"the folder {root.name}", None, skipped)  # fmt: skip
    hf = load_hf(
        spec.dataset,
        kind,
        split=spec.split,
        test_split=spec.test_split,
        image_column=spec.image_column,
        label_column=spec.label_column,
        download=spec.download,
    )
    class_names = hf.class_names
    if hf.train_labels is not None and class_names is None:
        class_names = names_of(hf.train_labels + (hf.test_labels or []))
    name = spec.dataset if kind == "hub" else Path(spec.dataset).expanduser().resolve().name
    tables: dict[str, PictureTable] = {"train": hf.train}
    labels = {"train": hf.train_labels}
    if hf.test is not None:
        tables["test"], labels["test"] = hf.test, hf.test_labels
    return _Source(tables, labels, class_names, name, spec.dataset if kind == "hub" else None,
                   f"the {hf.split!r} split of {name}", hf.test_split if hf.test is not None else None,
                   skipped)  # fmt: skip


def _plan(spec: DataSpec, source: _Source, workers: int, progress: bool) -> Plan:
    """Read every training picture's header, choose the shape, and choose the rows of each split."""
    if spec.strict_data and source.skipped:
        raise DataError(f"--strict-data: {source.skipped.report()}")
    table = source.tables["train"]
    headers = scan_headers({"train": table}, workers, _bar(progress))["train"]
    for row, why in headers.errors:
        source.skipped.add(table.name(row), why)
    if spec.strict_data and source.skipped:
        raise DataError(f"--strict-data: {source.skipped.report()}")
    readable = headers.readable
    if not len(readable):
        raise DataError(
            f"none of the {len(table)} file(s) in {source.name} is a readable image; {source.skipped.report()}"
        )
    size = spec.image_size or common_side(table, readable, headers.sizes)
    channels = spec.channels or (1 if headers.grey[readable].all() else 3)
    if "test" in source.tables:
        train_rows, test_rows, test_table = readable, np.arange(len(source.tables["test"])), "test"
    else:
        train_rows, test_rows = hold_out(len(readable), spec.test_fraction, spec.seed)
        train_rows, test_rows, test_table = readable[train_rows], readable[test_rows], "train"
    info = {"name": source.name, "display_name": source.name, "hub_id": source.hub_id,
            "class_names": source.class_names, "skipped_items": source.skipped.items,
            "skipped_count": source.skipped.count}  # fmt: skip
    return Plan(channels, size, train_rows, test_rows, test_table, info)


def _decode_into(cache: DecodedCache, spec: DataSpec, kind: str, progress: bool) -> None:
    """Decode the source into ``cache``, continuing an interrupted decoding of the same files and settings."""
    source = _open_source(spec, kind)
    workers = spec.decode_workers or default_workers()
    plan = cache.resumable_plan()
    if plan is None:
        plan = _plan(spec, source, workers, progress)
        cache.begin(plan)
    else:
        print(f"continuing the interrupted decoding in {cache.partial}")
    done, failures = cache.done()
    segments = [("train", plan.train_rows), (plan.test_table, plan.test_rows)]
    tasks = decode_tasks(segments, cache.images_path(), plan.channels, plan.size)
    pending = [t for t in tasks if t.first_row not in done]
    left = sum(len(t.indices) for t in pending)
    desc = f"decoding {plan.channels}x{plan.size}x{plan.size}"
    with tqdm(total=plan.rows, initial=plan.rows - left, desc=desc, unit="img", disable=not progress) as bar:
        for first_row, n, chunk_failures in run_tasks(decode_chunk, pending, source.tables, workers, left):
            cache.record(first_row, chunk_failures)
            failures += chunk_failures
            bar.update(n)

    skipped = Skipped([tuple(item) for item in plan.info.pop("skipped_items")], plan.info.pop("skipped_count"))
    for _, name, why in failures:
        skipped.add(name, why)
    if spec.strict_data and skipped:
        raise DataError(f"--strict-data: {skipped.report()}")
    failed = {row for row, _, _ in failures}
    kept = np.ones(plan.rows, dtype=bool)
    kept[list(failed)] = False
    n_train = len(plan.train_rows)
    train_kept, test_kept = plan.train_rows[kept[:n_train]], plan.test_rows[kept[n_train:]]
    if not len(test_kept):
        raise DataError(f"{source.name} has no test images left; add images or raise --test-fraction")
    names = source.class_names
    train_labels = label_tensor(source.labels["train"], train_kept, names)
    test_labels = label_tensor(source.labels[plan.test_table], test_kept, names)
    if plan.test_table == "train":
        total = len(train_kept) + len(test_kept)
        split_note = (
            f"a random {spec.test_fraction:.0%} of {source.split_from} ({len(test_kept):,} of {total:,} images, "
            f"seed {spec.seed}) held out from training"
        )
    else:
        split_note = f"its {source.test_split!r} split ({len(test_kept):,} images)"
    if skipped:
        print(f"warning: {skipped.report()}")
    plan.info |= {"split_note": split_note, "train_size": len(train_kept),
                  "skipped": skipped.report() if skipped else ""}  # fmt: skip
    cache.finish(plan, train_labels, test_labels, failed)


def _bar(progress: bool) -> Any:
    return lambda total, desc: tqdm(total=total, desc=desc, unit="img", disable=not progress)


def common_side(table: PictureTable, readable: np.ndarray, sizes: np.ndarray) -> int:
    """The images' side when all are square and of one size; else a DataError asking for --image-size."""
    distinct, first = np.unique(sizes[readable], axis=0, return_index=True)
    if len(distinct) == 1 and distinct[0, 0] == distinct[0, 1]:
        return int(distinct[0, 0])
    order = np.argsort(first)[:4]  # the sizes in the order they first appear
    examples = ", ".join(f"{w}x{h} ({table.name(int(readable[first[k]]))})" for k in order for w, h in [distinct[k]])
    raise DataError(
        f"the images are not all square and of one size ({len(distinct)} size(s): {examples}); pass --image-size S "
        "to scale and centre-crop them all to SxS"
    )


def label_tensor(labels: list[Any] | None, kept: np.ndarray, class_names: list[str] | None) -> Tensor:
    """Class indices of the kept images (-1 everywhere when the data has no labels)."""
    if labels is None or class_names is None:
        return torch.full((len(kept),), -1, dtype=torch.long)
    values = [labels[int(i)] for i in kept]
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if integers and len(class_names) > max(values, default=0):
        return torch.tensor(values, dtype=torch.long)
    index = {name: i for i, name in enumerate(class_names)}
    return torch.tensor([index[str(v)] for v in values], dtype=torch.long)


def hold_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random ``fraction`` of ``n`` images (at least one) to test on: (train, test) positions, ascending."""
    n_test = max(1, round(n * fraction))
    if n - n_test < 1:
        raise DataError(f"{n} image(s) cannot be split into training and test images; add images")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_test:].sort().values.numpy(), order[:n_test].sort().values.numpy()
