"""Experiment tracking through Accelerate's trackers (TensorBoard, trackio, Weights & Biases): what is logged.

Per epoch, the figures of the training history (losses, KL, active units, learning rate, ...) and two pictures:
decoded draws from a fixed set of prior samples and reconstructions of the first test images.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from accelerate import Accelerator
from torch import Tensor

from ..data.image_data import to_unit
from ..models.base import BaseVAE
from .config import TrainConfig

PICTURES = 16  # prior samples and reconstructions logged per epoch


def tracker_config(config: TrainConfig) -> dict[str, bool | int | float | str]:
    """The run's settings as trackers accept them: scalars only (lists and unset options left out)."""
    return {k: v for k, v in asdict(config).items() if isinstance(v, (bool, int, float, str))}


def figures(stats: dict[str, Any]) -> dict[str, float]:
    """The numbers of an epoch's history entry, without the epoch itself (it is the step)."""
    return {k: float(v) for k, v in stats.items() if k != "epoch" and isinstance(v, (int, float))}


@torch.no_grad()
def pictures(model: BaseVAE, test_images: Tensor, test_labels: Tensor | None = None) -> dict[str, Tensor]:
    """Samples from the same prior draws every epoch, and reconstructions of the first test images: (N, C, H, W).

    A conditional model's samples cycle through the classes; its reconstructions use the test labels.
    """
    z = torch.randn(PICTURES, model.latent_dim, generator=torch.Generator().manual_seed(0)).to(model.device)
    x = to_unit(test_images[:PICTURES]).to(model.device)
    cycle = torch.arange(PICTURES) % model.num_classes if model.conditional else None
    recon_labels = test_labels[:PICTURES] if model.conditional and test_labels is not None else None
    samples = model.to_images(model.decode(z, cycle)).float().clamp(0, 1).cpu()
    recon = model.to_images(model.reconstruct(model.check_input(x), recon_labels)).float().clamp(0, 1).cpu()
    return {"samples": samples, "reconstructions": recon}


def log_epoch(
    accel: Accelerator, model: BaseVAE, test_images: Tensor, stats: dict[str, Any], test_labels: Tensor | None = None
) -> None:
    """Log an epoch's figures, and its pictures to the trackers that take images."""
    step = int(stats["epoch"])
    accel.log(figures(stats), step=step)
    images = None
    for tracker in accel.trackers:
        if hasattr(tracker, "log_images"):
            images = images if images is not None else pictures(model, test_images, test_labels)
            tracker.log_images(images, step=step)
