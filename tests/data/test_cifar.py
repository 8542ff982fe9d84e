"""CIFAR-10 from its files: both versions read, and a pickle that asks for anything but arrays is refused unrun."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from vae_hub.data.cifar import read_python_batch
from vae_hub.data.named_sets import load_dataset
from vae_hub.errors import CIFARFormatError

PER_BATCH = 3


def batch(seed: int, n: int = PER_BATCH) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


def write_python_version(root, **replace) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = batch(i)
        content = {"batch_label": f"batch {i}", "labels": labels, "data": data, "filenames": ["x.png"] * len(labels)}
        (folder / name).write_bytes(pickle.dumps({**content, **replace}, protocol=2))  # as the real files


def test_the_python_version_is_read_as_the_files_hold_it(tmp_path):
    write_python_version(tmp_path)
    train = load_dataset("cifar10", tmp_path, train=True, download=False)
    test = load_dataset("cifar10", tmp_path, train=False, download=False)
    assert train.images.shape == (5 * PER_BATCH, 3, 32, 32) and train.images.dtype == torch.uint8
    data, labels = batch(5)
    assert np.array_equal(test.images.numpy(), data.reshape(-1, 3, 32, 32)) and test.labels.tolist() == labels
    assert train.class_names[0] == "airplane" and len(train.class_names) == 10


def test_a_batch_pickled_by_numpy_1_loads_too(tmp_path):
    # the published files name numpy.core.multiarray (numpy 1.x); numpy 2 writes numpy._core.multiarray
    data, labels = batch(7)
    written = pickle.dumps({"data": data, "labels": labels}, protocol=2)
    assert b"cnumpy._core.multiarray\n_reconstruct\n" in written
    path = tmp_path / "data_batch_1"
    path.write_bytes(written.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    images, read_labels = read_python_batch(path)
    assert np.array_equal(images.numpy(), data.reshape(-1, 3, 32, 32)) and read_labels.tolist() == labels


def test_the_binary_version_is_read_too(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
        data, labels = batch(i)
        (folder / name).write_bytes(np.concatenate([np.array(labels, np.uint8)[:, None], data], 1).tobytes())
    test = load_dataset("cifar10", tmp_path, train=False, download=False)
    data, labels = batch(5)
    assert np.array_equal(test.images.numpy(), data.reshape(-1, 3, 32, 32)) and test.labels.tolist() == labels
    (folder / "test_batch.bin").write_bytes(b"\0" * 3072)  # one byte short of a record
    with pytest.raises(CIFARFormatError, match="3073-byte records"):
        load_dataset("cifar10", tmp_path, train=False, download=False)


class RunsCode:
    """What a crafted batch holds: unpickling it would call os.system."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_names_other_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    write_python_version(tmp_path / "data", labels=RunsCode(marker))
    with pytest.raises(CIFARFormatError, match=r"asks for \w+\.system.*not loaded"):
        load_dataset("cifar10", tmp_path / "data", train=True, download=False)
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(RunsCode(marker))) == 0 and marker.exists()  # the payload is real


@pytest.mark.parametrize(
    "content, message",
    [
        ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "uint8 array"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "list of 2 integers"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, "labels must be 0 to 9"),
        (["not", "a", "dict"], "expected a dict"),
    ],
)
def test_a_batch_with_the_wrong_contents_says_what_was_expected(tmp_path, content, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(CIFARFormatError, match=message):
        read_python_batch(path)
    whole = pickle.dumps(content, protocol=2)
    path.write_bytes(whole[: len(whole) // 2])  # cut short
    with pytest.raises(CIFARFormatError, match="not a readable CIFAR-10 batch"):
        read_python_batch(path)
