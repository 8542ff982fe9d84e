"""The arithmetic each timed figure needs, and its floor: that many FLOPs at the CPU's matmul peak.

FLOPs are counted by torch's own ``FlopCounterMode`` (matmuls and convolutions, forward and backward) on one batch
of the benchmarked model; everything else a step does (activations, the loss, Adam) is what a ratio above 1 holds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ...models.base import BaseVAE
from ...models.objectives import elbo
from ...training.config import TrainConfig
from ...training.trainer import build_model

IMAGE_SHAPE = (1, 28, 28)
SIZES: dict[str, dict[str, Any]] = {  # the benchmarked models' settings (the others are vae-hub train's defaults)
    "mlp": {"hidden_dim": 400, "latent_dim": 20},
    "conv": {"hidden_dim": 256, "latent_dim": 16},
}


def training_flops(model: str, batch: int = 128) -> dict[str, float]:
    """FLOPs per image of a training step (forward and backward) and of a test pass (forward) of ``model``."""
    torch.manual_seed(0)
    net = build_model(TrainConfig(model=model, **SIZES[model]), IMAGE_SHAPE)
    x = torch.rand(batch, *IMAGE_SHAPE)
    with FlopCounterMode(display=False) as train:
        elbo(net, x).loss.backward()
    with torch.no_grad(), FlopCounterMode(display=False) as test:
        elbo(net, x)
    return {"train_per_image": train.get_total_flops() / batch, "test_per_image": test.get_total_flops() / batch}


def decoder_flops_per_sample(model: BaseVAE, batch: int = 64) -> float:
    """FLOPs of ``model``'s decoder on one latent code: what each importance sample of the NLL costs in matmuls."""
    z = torch.zeros(batch, model.latent_dim)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.decode_logits(z)
    return counter.get_total_flops() / batch


def epoch_floor_seconds(flops: dict[str, float], train_images: int, test_images: int, gflops: float) -> float:
    """Seconds an epoch (a training pass and a test pass) would take doing only its matmuls at ``gflops``."""
    total = flops["train_per_image"] * train_images + flops["test_per_image"] * test_images
    return total / (gflops * 1e9)
