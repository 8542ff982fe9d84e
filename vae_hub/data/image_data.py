"""Decoded images in memory: uint8 tensors (N, C, H, W) with their labels, and the two splits of a training run."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

BINARIZE_SEED = 12345  # one fixed binarization of a test set, the same in training and in evaluation


def fixed_binarization(images: Tensor) -> Tensor:
    """Pixels drawn once as Bernoulli(p = grey level) with a fixed seed: the binarized test set of ``--binarize``."""
    generator = torch.Generator(device=images.device).manual_seed(BINARIZE_SEED)
    return torch.bernoulli(images, generator=generator)


def to_unit(images: Tensor) -> Tensor:
    """uint8 pixels to float32 in [0, 1] (a float tensor is returned as it is)."""
    return images if images.is_floating_point() else images.float().div_(255)


@dataclass
class ImageData:
    """A data set split held in memory: ``images`` (N, C, H, W) uint8, ``labels`` (N,) class indices (-1: none)."""

    images: Tensor
    labels: Tensor
    class_names: list[str] | None = None

    def __len__(self) -> int:
        return self.images.shape[0]


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
