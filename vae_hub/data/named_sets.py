"""Image data sets, decoded once and held in memory as uint8 tensors (``to_unit`` per batch).

Offline, ``data_dir`` may hold torchvision's own layout (``<data_dir>/<ClassName>/raw/...``) or a plain folder with
the four IDX files, compressed (``*.gz``, as Debian's ``dataset-fashion-mnist`` installs them) or not. Compressed or
loose files are unpacked once into ``cache_dir`` in torchvision's layout. The MNIST family's IDX files are read here
(one allocation, header checked against the file size), and CIFAR-10's batches by ``cifar.py`` (no code in a pickle
runs); torchvision is imported only to download a data set (importing it costs ~1.2 s).
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DataNotFoundError, IDXFormatError
from ..fileio import atomic_copy
from .cifar import BINARY_FOLDER, PYTHON_FOLDER, download_cifar10, find_cifar10, read_cifar10
from .cifar import CLASSES as CIFAR_CLASSES
from .image_data import ImageData

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DatasetInfo:
    """What vae-hub knows about a named data set (``DATASETS``).

    Attributes:
        name: The ``--dataset`` name.
        display_name: Its name in prose.
        torchvision_class: The torchvision class that reads (or downloads) it.
        image_shape: (C, H, W).
        train_size: Images in the full training split.
        hub_id: Its id on the Hugging Face Hub, for model cards.
        how_to_get: Where the files come from offline.
        classes: Its class names.
    """

    name: str
    display_name: str
    torchvision_class: str
    image_shape: tuple[int, int, int]
    train_size: int  # images in the full training split
    hub_id: str  # the data set's id on the Hugging Face Hub, for model cards
    how_to_get: str = "torchvision downloads it when online"
    classes: list[str] = field(default_factory=list)  # torchvision's class names (the MNIST family's, read here)


DATASETS = {
    "mnist": DatasetInfo(
        "mnist",
        "MNIST",
        "MNIST",
        (1, 28, 28),
        60_000,
        "ylecun/mnist",
        classes=[
            "0 - zero",
            "1 - one",
            "2 - two",
            "3 - three",
            "4 - four",
            "5 - five",
            "6 - six",
            "7 - seven",
            "8 - eight",
            "9 - nine",
        ],
    ),  # fmt: skip
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "Fashion-MNIST",
        "FashionMNIST",
        (1, 28, 28),
        60_000,
        "zalando-datasets/fashion_mnist",
        "`apt-get install dataset-fashion-mnist` puts the .gz files in /usr/share/datasets/fashion-mnist; "
        "torchvision downloads it when online",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
    "kmnist": DatasetInfo(
        "kmnist",
        "KMNIST",
        "KMNIST",
        (1, 28, 28),
        60_000,
        "tanganke/kmnist",
        classes=["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
    ),  # fmt: skip
    "cifar10": DatasetInfo("cifar10", "CIFAR-10", "CIFAR10", (3, 32, 32), 50_000, "uoft-cs/cifar10"),
}


def default_cache_dir() -> Path:
    return Path(os.environ.get("VAE_HUB_CACHE", "~/.cache/vae-hub")).expanduser() / "datasets"


def read_idx(path: Path, ndim: int) -> Tensor:
    """An IDX file of unsigned bytes (the MNIST family's format) as a uint8 tensor of ``ndim`` dimensions.

    The header (two zero bytes, 0x08 for unsigned bytes, the number of dimensions, then each size as a big-endian
    uint32) is checked against the file's size before the data is read, in one allocation.
    """
    header_size = 4 + 4 * ndim
    file_size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(header_size)
    if len(header) < header_size or header[:3] != b"\x00\x00\x08" or header[3] != ndim:
        raise IDXFormatError(
            f"{path} is not an IDX file of {ndim}-D unsigned bytes: it starts with {header[:4].hex() or 'nothing'}, "
            f"expected 0000080{ndim}"
        )
    sizes = struct.unpack(f">{ndim}I", header[4:])
    if header_size + math.prod(sizes) != file_size:
        raise IDXFormatError(
            f"{path}: its header announces {' x '.join(map(str, sizes))} bytes of data, but the file holds "
            f"{file_size - header_size:,}; re-download or re-copy it"
        )
    return torch.from_numpy(np.fromfile(path, dtype=np.uint8, offset=header_size)).reshape(sizes)


def _find_idx_folder(data_dir: Path, class_name: str) -> tuple[Path, bool] | None:
    """A folder holding the four IDX files, and whether they are gzip-compressed."""
    for folder in (data_dir / class_name / "raw", data_dir / "raw", data_dir):
        for compressed in (False, True):
            suffix = ".gz" if compressed else ""
            if all((folder / (f + suffix)).is_file() for f in IDX_FILES):
                return folder, compressed
    return None


def _torchvision_root(info: DatasetInfo, data_dir: Path, cache_dir: Path) -> Path | None:
    """A root folder from which torchvision's class reads the data set without downloading, or None."""
    if info.name == "cifar10":
        return data_dir if find_cifar10(data_dir) is not None else None
    found = _find_idx_folder(data_dir, info.torchvision_class)
    if found is None:
        return None
    folder, compressed = found
    if folder == data_dir / info.torchvision_class / "raw" and not compressed:
        return data_dir
    raw = cache_dir / info.torchvision_class / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        target = raw / name
        if target.is_file():
            continue
        atomic_copy(folder / (f"{name}.gz" if compressed else name), target, gunzip=compressed)
    return cache_dir


def _expected_files(info: DatasetInfo, data_dir: Path) -> str:
    if info.name == "cifar10":
        return f"{data_dir}/{PYTHON_FOLDER}/ (torchvision's CIFAR-10 layout) or {data_dir}/{BINARY_FOLDER}/"
    names = ", ".join(IDX_FILES)
    return (
        f"the four IDX files ({names}) in {data_dir}/{info.torchvision_class}/raw/ (torchvision's layout), "
        f"or in {data_dir}/ itself, plain or as .gz files"
    )


def torchvision_root(name: str, data_dir: str | Path, cache_dir: str | Path | None = None) -> Path:
    """A folder from which torchvision's own class for data set ``name`` reads it offline (unpacking .gz files)."""
    info = DATASETS[name]
    data_dir = Path(data_dir).expanduser()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = _torchvision_root(info, data_dir, cache)
    if root is None:
        raise DataNotFoundError(f"{name} was not found: expected {_expected_files(info, data_dir)}")
    return root


def load_dataset(
    name: str,
    data_dir: str | Path = "data",
    *,
    train: bool,
    download: bool = True,
    cache_dir: str | Path | None = None,
) -> ImageData:
    """Load one split of a named data set into memory.

    The MNIST family is read from its IDX files (plain or ``.gz``, in torchvision's layout or not; checked before
    they are read); CIFAR-10 from its batches, without running pickle code.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"``, ``"kmnist"`` or ``"cifar10"``.
        data_dir: Where the files are, or are downloaded to.
        train: The training split (True) or the test split (False).
        download: Download when the files are missing (torchvision's download).
        cache_dir: Where compressed files are unpacked (default ``~/.cache/vae-hub``).

    Returns:
        The split as uint8 images with their labels and class names.

    Raises:
        DataNotFoundError: When the files are missing (and not downloaded), listing those expected and where.
        IDXFormatError: For IDX files that are not what they claim.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    info = DATASETS[name]
    data_dir = Path(data_dir).expanduser()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = _torchvision_root(info, data_dir, cache)
    if root is not None and info.classes:  # the MNIST family, found: read here
        raw = root / info.torchvision_class / "raw"
        split = "train" if train else "t10k"
        images = read_idx(raw / f"{split}-images-idx3-ubyte", 3)
        labels = read_idx(raw / f"{split}-labels-idx1-ubyte", 1)
        if len(images) != len(labels) or (len(labels) and int(labels.max()) >= len(info.classes)):
            raise IDXFormatError(
                f"{raw}: {len(images):,} images and {len(labels):,} labels; expected as many, each below "
                f"{len(info.classes)}"
            )
        return ImageData(images[:, None].contiguous(), labels.long(), list(info.classes))
    folder = find_cifar10(data_dir) if info.name == "cifar10" else None
    if folder is None:  # not here (the MNIST family's files were looked for above): download, if allowed
        problem = f"{name} was not found: expected {_expected_files(info, data_dir)}"
        if not download:
            raise DataNotFoundError(f"{problem}. To get it: {info.how_to_get}.")
        try:
            if info.name == "cifar10":  # torchvision's downloader (archive checksum checked); read below as any folder
                folder = download_cifar10(data_dir)
            else:
                import torchvision

                dataset_class = getattr(torchvision.datasets, info.torchvision_class)
                dataset = dataset_class(str(data_dir), train=train, download=True)
        except Exception as e:  # torchvision raises several kinds on network failure
            raise DataNotFoundError(
                f"{problem}, and downloading it failed ({type(e).__name__}: {e}). To get it: {info.how_to_get}; "
                "then pass its folder as data_dir (--data-dir)."
            ) from e
    if folder is not None:  # CIFAR-10: its pickles restricted to arrays and lists (cifar.py)
        images, labels = read_cifar10(folder, train)
        return ImageData(images, labels, list(CIFAR_CLASSES))
    images = torch.as_tensor(dataset.data)[:, None]  # the MNIST family: (N, H, W) uint8
    labels = torch.as_tensor(dataset.targets, dtype=torch.long)
    return ImageData(images.contiguous(), labels, [str(c) for c in dataset.classes])
