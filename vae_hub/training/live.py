"""Train a small VAE in memory within a time budget, reporting as it goes: the Space's live training.

The loop is the ELBO step of ``vae_hub.training`` without its run machinery (checkpoints, Accelerate, cards):
for a minute of CPU on a few thousand images, where a visitor watches the loss fall and the latent map form.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from ..models.base import BaseVAE
from ..models.objectives import elbo
from .trainer import adam


@dataclass(frozen=True)
class Progress:
    """Where a live training stands after ``step`` of ``total_steps`` steps."""

    epoch: float  # epochs done, fractional
    step: int
    total_steps: int
    loss: float  # mean -ELBO (nats/image) over the steps since the last report
    kl: float
    seconds: float
    done: bool = False
    stopped_by_budget: bool = False


def train_live(
    model: BaseVAE,
    images: Tensor,
    *,
    epochs: int,
    beta: float = 1.0,
    batch_size: int = 128,
    lr: float = 1e-3,
    budget_seconds: float = 60.0,
    report_every: float = 1.0,
    seed: int = 0,
) -> Iterator[Progress]:
    """Train a model in memory within a time budget, reporting as it goes: the Space's live training.

    Minimises beta-weighted −ELBO with Adam; the caller may stop iterating at any time (a cancelled request), and
    the model keeps the steps taken.

    Args:
        model: A vae-hub model, trained in place.
        images: Training images (N, C, H, W) in [0, 1].
        epochs: Passes over the images, >= 1.
        beta: The KL weight.
        batch_size: Images per step.
        lr: Adam's learning rate.
        budget_seconds: Stop after this many seconds, > 0.
        report_every: Seconds between reports.
        seed: The seed of the order and of the draws.

    Yields:
        A ``Progress`` about every ``report_every`` seconds, and one at the end (``done=True``).

    Raises:
        ValueError: For ``epochs`` < 1 or a budget that is not a positive number.
    """
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if not (budget_seconds > 0 and math.isfinite(budget_seconds)):
        raise ValueError(f"budget_seconds must be a positive number, got {budget_seconds!r}")
    generator = torch.Generator().manual_seed(seed)
    optimizer = adam(list(p for p in model.parameters() if p.requires_grad), lr)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    total = steps_per_epoch * epochs
    start = last = time.perf_counter()
    loss_sum = kl_sum = 0.0
    seen = step = 0
    model.train()
    try:
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=generator)
            for idx in order.split(batch_size):
                out = elbo(model, images[idx], beta=beta, generator=generator)
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                optimizer.step()
                step += 1
                loss_sum += float(out.total_sum.detach())
                kl_sum += float(out.kl_sum.detach())
                seen += len(idx)
                now = time.perf_counter()
                over = now - start >= budget_seconds
                if now - last >= report_every or step == total or over:
                    yield Progress(step / steps_per_epoch, step, total, loss_sum / seen, kl_sum / seen, now - start,
                                   done=step == total or over, stopped_by_budget=over and step < total)  # fmt: skip
                    last, loss_sum, kl_sum, seen = now, 0.0, 0.0, 0
                if over:
                    return
    finally:
        model.eval()
