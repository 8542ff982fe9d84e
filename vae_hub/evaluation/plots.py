"""The pictures that go with a trained model: prior samples, reconstructions, training curves."""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.image_data import to_unit
from ..images import save_grid
from ..models.base import BaseVAE
from ..models.mixture import GaussianMixture

PER_CLASS = 8  # samples in each class's row of a conditional model's samples.png


def save_samples(
    model: BaseVAE,
    path: str | os.PathLike[str],
    n: int = 64,
    temperature: float = 1.0,
    seed: int = 0,
    padding: int = 2,
    prior: GaussianMixture | None = None,
) -> None:
    """Write a square grid of ``n`` images decoded from the prior N(0, temperature² I) (or ``prior``), as a PNG.

    For a conditional model: one row of samples for each class, in class order.

    Args:
        model: A vae-hub model.
        path: The PNG file to write.
        n: Images in the grid.
        temperature: The prior's scale, >= 0.
        seed: The seed of the draws.
        padding: Pixels between the images.
        prior: A mixture fitted to the model's codes to draw z from instead (``fit_code_mixture``).
    """
    generator = torch.Generator(device=model.device).manual_seed(seed)
    if model.conditional:
        labels = torch.arange(model.num_classes).repeat_interleave(PER_CLASS)
        images = model.sample(len(labels), temperature, generator=generator, labels=labels, prior=prior)
        save_grid(images, path, nrow=PER_CLASS, padding=padding)
        return
    images = model.sample(n, temperature, generator=generator, prior=prior)
    save_grid(images, path, padding=padding)


def save_reconstructions(model: BaseVAE, images: Tensor, path: Path, n: int = 8, labels: Tensor | None = None) -> None:
    """Write two rows as a PNG: ``n`` originals above their reconstructions.

    Args:
        model: A vae-hub model.
        images: Images (N, C, H, W) in [0, 1] (or uint8); the first ``n`` are shown.
        path: The PNG file to write.
        n: Images shown.
        labels: A conditional model's classes of ``images``.
    """
    x = to_unit(images[:n])
    recon = model.reconstruct(x, labels=labels[:n] if model.conditional else None)
    save_grid(torch.cat([x.cpu(), recon.float().cpu()]), path, nrow=x.shape[0])


def import_matplotlib_in_the_background() -> threading.Thread:
    """Start importing what ``save_training_curves`` needs in a daemon thread, and return the thread.

    Importing matplotlib takes ~0.4 s, ~3% of training the MLP VAE for 10 epochs; started when training starts, it
    runs while the training loop waits in torch's kernels (which release the GIL). A later import waits for it to
    finish (Python's import lock), so nothing can see a half-imported module.
    """
    thread = threading.Thread(target=_import_matplotlib, name="import-matplotlib", daemon=True)
    thread.start()
    return thread


def _import_matplotlib() -> None:
    with contextlib.suppress(Exception):  # an import that fails here fails again, with its message, where it is used
        importlib.import_module("matplotlib.figure")
        importlib.import_module("matplotlib.backends.backend_agg")


def save_training_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Write the train and test loss (−ELBO) and the KL per epoch as a PNG.

    Args:
        history: The per-epoch records of ``metrics.json`` (``epoch``, ``train_loss``, ``test_loss``, ...).
        path: The PNG file to write.
    """
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend to pick

    if any("stage" in h for h in history):
        save_two_stage_curves(history, path)
        return
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.4), dpi=100)
    ax_loss, ax_kl = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="-ELBO (nats / image)", title="Loss")
    ax_loss.legend()
    ax_kl.plot(epochs, [h["train_kl"] for h in history], "o-", label="train")
    ax_kl.plot(epochs, [h["test_kl"] for h in history], "s-", label="test")
    ax_kl.set(xlabel="epoch", ylabel="KL (nats / image)", title="KL(q(z|x) || p(z))")
    ax_kl.legend()
    for ax in (ax_loss, ax_kl):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def save_two_stage_curves(history: list[dict[str, Any]], path: Path) -> None:
    """A VQ-VAE's curves as a PNG: the reconstruction per autoencoder epoch, then the code length per prior epoch.

    Args:
        history: ``metrics.json``'s per-epoch records, each with its ``stage`` ("autoencoder" or "prior").
        path: The PNG file to write.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), dpi=100)
    axes = fig.subplots(1, 2)
    titles = {"autoencoder": ("reconstruction (nats / image)", "Stage 1: autoencoder and codebook"),
              "prior": ("code length (nats / image)", "Stage 2: the prior over code grids")}  # fmt: skip
    for ax, (stage, (ylabel, title)) in zip(axes, titles.items(), strict=True):
        rows = [h for h in history if h.get("stage") == stage]
        epochs = [h["epoch"] for h in rows]
        ax.plot(epochs, [h["train_loss"] for h in rows], "o-", label="train")
        ax.plot(epochs, [h["test_loss"] for h in rows], "s-", label="test")
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)
        if rows:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path)
