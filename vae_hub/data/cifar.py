"""CIFAR-10 read from its files without trusting them.

The python version of CIFAR-10 (``cifar-10-batches-py``, what torchvision downloads) is a set of pickles, and
unpickling runs whatever code a file names: a crafted batch in a folder passed as ``--data-dir`` would run on
load. Here pickle may build only what those files hold (dicts, lists, strings, numbers and numpy arrays: numpy's
array reconstruction, ``ndarray`` and ``dtype``); a file that names any other global is refused with
``CIFARFormatError`` before the global is looked up. The binary version (``cifar-10-batches-bin``: one label
byte and 3,072 pixel bytes per image) needs no pickle and is read as it is.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import CIFARFormatError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PYTHON_FOLDER, BINARY_FOLDER = "cifar-10-batches-py", "cifar-10-batches-bin"
BATCHES = {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]}
PIXELS = 3 * 32 * 32
MAX_BATCH_BYTES = 64 * 2**20  # a batch of 10,000 images is ~31 MB; nothing larger is read
# what numpy arrays, and the strings of a Python 2 pickle, need to be rebuilt: nothing that runs other code
ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def __init__(self, file: object, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # type: ignore[arg-type]  # Python 2 pickles, as torchvision
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in ALLOWED_GLOBALS:
            raise CIFARFormatError(
                f"{self.path}: its pickle asks for {module}.{name}; a CIFAR-10 batch holds only numpy arrays, lists "
                "and strings, so it was not loaded (it may be damaged, or crafted to run code)"
            )
        return super().find_class(module, name)


def _check_size(path: Path) -> int:
    size = path.stat().st_size
    if size > MAX_BATCH_BYTES:
        raise CIFARFormatError(f"{path}: {size:,} bytes; a CIFAR-10 batch is at most {MAX_BATCH_BYTES:,}")
    return size


def read_python_batch(path: Path) -> tuple[Tensor, Tensor]:
    """One pickled batch: images (N, 3, 32, 32) uint8 and labels (N,) int64, every value checked."""
    _check_size(path)
    with open(path, "rb") as f:
        try:
            batch = _BatchUnpickler(f, path).load()
        except CIFARFormatError:
            raise
        except Exception as e:  # truncated or not a pickle at all
            raise CIFARFormatError(f"{path}: not a readable CIFAR-10 batch ({type(e).__name__}: {e})") from None
    data = batch.get("data") if isinstance(batch, dict) else None
    labels = batch.get("labels") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        raise CIFARFormatError(f"{path}: expected a dict whose 'data' is a uint8 array of N x {PIXELS} pixels")
    if not (isinstance(labels, list) and len(labels) == len(data) and all(type(v) is int for v in labels)):
        raise CIFARFormatError(f"{path}: expected 'labels', a list of {len(data):,} integers (one per image)")
    return _checked(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.tensor(labels, dtype=torch.long), path)


def read_binary_batch(path: Path) -> tuple[Tensor, Tensor]:
    """One batch of the binary version: records of a label byte followed by 3,072 pixel bytes."""
    size = _check_size(path)
    if size % (PIXELS + 1):
        raise CIFARFormatError(f"{path}: {size:,} bytes is not a whole number of {PIXELS + 1}-byte records")
    records = torch.from_numpy(np.fromfile(path, dtype=np.uint8).reshape(-1, PIXELS + 1))
    return _checked(records[:, 1:].reshape(-1, 3, 32, 32).contiguous(), records[:, 0].long(), path)


def _checked(images: Tensor, labels: Tensor, path: Path) -> tuple[Tensor, Tensor]:
    if len(labels) and not (int(labels.min()) >= 0 and int(labels.max()) < len(CLASSES)):
        raise CIFARFormatError(f"{path}: labels must be 0 to {len(CLASSES) - 1}")
    return images, labels


def find_cifar10(data_dir: Path) -> Path | None:
    """The folder of batches under ``data_dir`` (the python version first), or None."""
    for name in (PYTHON_FOLDER, BINARY_FOLDER):
        if (data_dir / name).is_dir():
            return data_dir / name
    return None


def read_cifar10(folder: Path, train: bool) -> tuple[Tensor, Tensor]:
    """The training (50,000) or test (10,000) split from ``folder`` (a ``cifar-10-batches-py`` or ``-bin``)."""
    binary = folder.name == BINARY_FOLDER
    parts = []
    for name in BATCHES[train]:
        path = folder / (f"{name}.bin" if binary else name)
        if not path.is_file():
            raise CIFARFormatError(f"{folder}: {path.name} is missing")
        parts.append(read_binary_batch(path) if binary else read_python_batch(path))
    return torch.cat([images for images, _ in parts]), torch.cat([labels for _, labels in parts])


def download_cifar10(data_dir: Path) -> Path:
    """Download and unpack the python version into ``data_dir`` (torchvision's downloader, its checksum checked)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(CIFAR10.url, str(data_dir), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    return data_dir / PYTHON_FOLDER
