"""Hugging Face datasets as training data: a Hub id, a ``save_to_disk`` folder, or parquet files.

Read with the ``datasets`` library (``pip install vae-hub[data]``). The image column is read undecoded (its bytes
or path) a chunk of rows at a time, so the pictures go through the same parallel decoding, resizing and
skipping as an image folder's, and the column is never held in memory whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, DataNotAvailableError
from .image_folder import Source

IMAGE_NAMES = ("image", "img", "picture", "pixel_values")
LABEL_NAMES = ("label", "labels", "class", "target", "fine_label")
SAVE_TO_DISK_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


class DatasetTable:
    """One split's image column, read undecoded a chunk of rows at a time (never the whole column at once)."""

    def __init__(self, ds: Any, column: str, split: str) -> None:
        datasets = _datasets()
        if isinstance(ds.features[column], datasets.Image):
            ds = ds.cast_column(column, datasets.Image(decode=False))
        self.ds, self.column, self.split = ds.select_columns([column]), column, split
        if len(ds):
            first = _source(ds[0][column])
            if first is None:
                raise DataError(self._not_images(ds[0][column], 0))

    def __len__(self) -> int:
        return len(self.ds)

    def name(self, index: int) -> str:
        return f"{self.split}[{index}]"

    def get(self, indices: Sequence[int]) -> list[Source]:
        if not len(indices):
            return []
        first, last = int(indices[0]), int(indices[-1])
        contiguous = last - first + 1 == len(indices)  # a slice reads Arrow in one go, a list row by row
        cells = self.ds[first : last + 1] if contiguous else self.ds[[int(i) for i in indices]]
        return [
            _source(cell) or _raiser(self._not_images(cell, int(i)))
            for i, cell in zip(indices, cells[self.column], strict=True)
        ]

    def _not_images(self, cell: Any, index: int) -> str:
        return not_images(self.column, cell, f"row {index} of split {self.split!r}")


def not_images(column: str, cell: Any, where: str) -> str:
    """The message for a cell of the image column that holds no picture."""
    return f"column {column!r} holds {type(cell).__name__} values, not images ({where})"


def _source(cell: Any) -> Source | None:
    if isinstance(cell, dict) and cell.get("bytes"):
        return bytes(cell["bytes"])
    if isinstance(cell, dict) and cell.get("path"):
        return Path(cell["path"])
    if isinstance(cell, bytes):
        return cell
    return None


def _raiser(message: str) -> Source:
    def fail() -> bytes:
        raise ValueError(message)

    return fail


@dataclass
class HFSplits:
    train: DatasetTable
    train_labels: list[Any] | None
    test: DatasetTable | None
    test_labels: list[Any] | None
    class_names: list[str] | None
    image_column: str
    label_column: str | None
    split: str
    test_split: str | None
    fingerprint: str


def is_save_to_disk(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in SAVE_TO_DISK_MARKERS)


def parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix == ".parquet" else []
    return sorted(p for p in path.rglob("*.parquet") if not any(part.startswith(".") for part in p.parts))


def names_of(labels: list[Any]) -> list[str]:
    """Class names for plain labels: '0'...'K-1' for integers 0..K-1, else the distinct values, sorted."""
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in labels):
        return [str(i) for i in range(max(labels, default=-1) + 1)]
    return sorted({str(v) for v in labels})


def _datasets() -> Any:
    try:
        import datasets  # an optional dependency: only this kind of training data needs it
    except ImportError as e:
        raise DataNotAvailableError(
            "reading a Hugging Face dataset needs the datasets library: pip install 'vae-hub[data]'"
        ) from e
    return datasets


def open_dataset(source: str, kind: str, *, download: bool) -> Any:
    """The ``Dataset`` or ``DatasetDict`` behind ``source``: kind is 'disk', 'parquet' or 'hub'."""
    datasets = _datasets()
    if kind == "disk":
        return datasets.load_from_disk(source)
    if kind == "parquet":
        path = Path(source)
        if path.is_file():
            return datasets.load_dataset("parquet", data_files={"train": str(path)})
        return datasets.load_dataset(str(path))  # split names from the file names (train-*.parquet, test-*.parquet)
    if not download:
        raise DataNotAvailableError(f"{source!r} would be downloaded from the Hugging Face Hub, but --no-download")
    try:
        return datasets.load_dataset(source)
    except Exception as e:  # offline, unknown id, gated: datasets raises many kinds
        raise DataNotAvailableError(
            f"the Hub dataset {source!r} could not be loaded ({type(e).__name__}: {str(e)[:200]}). Offline, pass a "
            "folder of images, a folder written by datasets' save_to_disk, or parquet files instead"
        ) from e


def pick_column(features: dict[str, Any], wanted: str | None, kind: str, names: tuple[str, ...], flag: str) -> str:
    datasets = _datasets()
    columns = list(features)
    if wanted is not None:
        if wanted not in features:
            raise DataError(f"{flag} {wanted!r} is not a column of the dataset; its columns are {columns}")
        return wanted
    typed = datasets.Image if kind == "image" else datasets.ClassLabel
    found = [c for c, f in features.items() if isinstance(f, typed)]
    if len(found) == 1:
        return found[0]
    named = [c for c in names if c in features]
    if named:
        return named[0]
    if kind == "label":
        return ""
    raise DataError(f"cannot tell which column holds the images (columns: {columns}); pass {flag} NAME")


def load_hf(
    source: str,
    kind: str,
    *,
    split: str,
    test_split: str | None,
    image_column: str | None,
    label_column: str | None,
    download: bool,
) -> HFSplits:
    """The train (and test, when there is one) split of a Hugging Face dataset, as undecoded pictures and labels."""
    datasets = _datasets()
    data = open_dataset(source, kind, download=download)
    if isinstance(data, datasets.DatasetDict):
        splits = list(data)
        if split not in data:
            raise DataError(f"--split {split!r} is not a split of {source}; its splits are {splits}")
        if test_split is not None and test_split not in data:
            raise DataError(f"--test-split {test_split!r} is not a split of {source}; its splits are {splits}")
        if test_split is None and "test" in data and split != "test":
            test_split = "test"
        train_ds, test_ds = data[split], (data[test_split] if test_split else None)
    else:
        if test_split is not None:
            raise DataError(f"{source} holds one split, so --test-split {test_split!r} cannot be used")
        train_ds, test_ds, split = data, None, "train"
    features = train_ds.features
    image_col = pick_column(features, image_column, "image", IMAGE_NAMES, "--image-column")
    label_col = pick_column(features, label_column, "label", LABEL_NAMES, "--label-column") or None
    class_names = None
    if label_col and isinstance(features[label_col], datasets.ClassLabel):
        class_names = list(features[label_col].names)
    fingerprint = train_ds._fingerprint + (test_ds._fingerprint if test_ds is not None else "")
    return HFSplits(
        train=DatasetTable(train_ds, image_col, split),
        train_labels=list(train_ds[label_col]) if label_col else None,
        test=DatasetTable(test_ds, image_col, test_split) if test_ds is not None else None,
        test_labels=list(test_ds[label_col]) if label_col and test_ds is not None else None,
        class_names=class_names,
        image_column=image_col,
        label_column=label_col,
        split=split,
        test_split=test_split,
        fingerprint=fingerprint,
    )
