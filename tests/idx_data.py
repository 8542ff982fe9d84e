"""Tiny MNIST-style IDX files written by the tests themselves."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import torch

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array: torch.Tensor) -> bytes:
    """IDX encoding of a uint8 tensor: magic (0, 0, 0x08, ndim), big-endian sizes, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.contiguous().numpy().tobytes()


def make_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten blob-like prototype classes plus noise, as uint8 (n, 28, 28), and labels."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centers = torch.tensor([[7 + 14 * (c % 2), 5 + 4.5 * (c // 2)] for c in range(10)])
    labels = torch.randint(0, 10, (n,), generator=g)
    cy, cx = centers[labels, 0, None, None], centers[labels, 1, None, None]
    blobs = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
    images = (blobs + 0.1 * torch.rand(n, 28, 28, generator=g)).clamp(0, 1)
    return (images * 255).to(torch.uint8), labels.to(torch.uint8)


def write_idx(folder: Path, n_train: int = 256, n_test: int = 64, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train, train_labels = make_images(n_train, 0)
    test, test_labels = make_images(n_test, 1)
    for name, array in zip(FILES, (train, train_labels, test, test_labels), strict=True):
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder
