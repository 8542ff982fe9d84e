"""Decoded images in memory: uint8 tensors (N, C, H, W) with their labels, and the two splits of a training run."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

BINARIZE_SEED = 12345  # one fixed binarization of a test set, the same in training and in evaluation


def fixed_binarization(images: Tensor) -> Tensor:
    """Binarize images once, with a fixed seed: the test images of ``--binarize``.

    Args:
        images: Floats in [0, 1], any shape.

    Returns:
        0/1 floats of the same shape, each pixel drawn as Bernoulli(grey level).
    """
    generator = torch.Generator(device=images.device).manual_seed(BINARIZE_SEED)
    return torch.bernoulli(images, generator=generator)


def to_unit(images: Tensor) -> Tensor:
    """Scale uint8 pixels to float32 in [0, 1]; a float tensor is returned as it is.

    Args:
        images: uint8 (0..255) or float pixels.

    Returns:
        Floats in [0, 1].
    """
    return images if images.is_floating_point() else images.float().div_(255)


@dataclass
class ImageData:
    """One split of a data set, held in memory.

    Attributes:
        images: uint8 (N, C, H, W), 0..255.
        labels: Class indices (N,), int64; -1 where there is no label.
        class_names: The classes' names, or None.
    """

    images: Tensor
    labels: Tensor
    class_names: list[str] | None = None

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class Splits:
    """The train and test images of a run, and what its model card says about them.

    Attributes:
        train: The training images.
        test: The test images.
        name: A short name: the data set's, the folder's, the Hub id.
        display_name: The name in the card's prose.
        hub_id: The dataset's Hub id, when there is one.
        split_note: Where the test images come from.
        train_size: Images in the whole training split (of a named data set, the official one).
        skipped: The report of files left out, if any.
    """

    train: ImageData  # or, with --streaming, an ImageStream that gives batches
    test: ImageData
    name: str  # a short name: the data set's, the folder's, the Hub id
    display_name: str  # for the card's prose
    hub_id: str | None  # the dataset's Hub id, when there is one
    split_note: str  # where the test images come from
    train_size: int  # images in the whole training split (for a named data set: the official one)
    skipped: str = ""  # the report of files left out, if any

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of every image."""
        return tuple(self.test.images.shape[1:])

    @property
    def class_names(self) -> list[str] | None:
        """The classes' names (from the training split), or None."""
        return self.train.class_names
