"""Train one live: a small MLP VAE trained in the page on the bundled Fashion-MNIST subset, streamed as it learns,
then served to every tab and downloadable as a ``save_pretrained`` folder."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...data.bundled import bundled_images
from ...evaluation.summary import evaluate
from ...models.mlp import VariationalAutoencoder
from ...training.live import train_live
from ..inputs import Rejected, as_choice, as_float, as_int
from ..model_store import LoadedModel, ModelStore
from .features import encode_sample

MAX_BUDGET_S = 90  # CPU seconds a visitor may spend; one training at a time per Space (the event's concurrency)
MAX_EPOCHS = 30
MAX_LATENT = 16
HIDDEN = 256
MAP_EVERY_S = 2.0  # the latent map is redrawn at most this often (drawing it costs ~0.2 s)
REPORT_EVERY_S = 0.3  # a point of the loss curve


def live_map(model: VariationalAutoencoder, title: str) -> np.ndarray:
    return encode_sample(model, "fashion-mnist").draw(title)


def save_zip(model: VariationalAutoencoder, name: str, metrics: dict[str, Any]) -> str:
    """The model as a zipped ``save_pretrained`` folder (config.json, model.safetensors, metrics.json)."""
    folder = Path(tempfile.mkdtemp(prefix="vae-hub-live-")) / name
    model.save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder.parent, base_dir=name)
    shutil.rmtree(folder)
    return archive


class LiveTraining:
    """The live training tab's feature over the page's model store."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def train(
        self, latent_dim: float = 2, beta: float = 1.0, epochs: float = 10, likelihood: str = "bernoulli",
        budget: float = 30,
    ) -> Iterator[tuple[str, pd.DataFrame, Any, Any, str]]:  # fmt: skip
        """Train a small VAE (784-256-latent MLP) on 4,000 bundled Fashion-MNIST images, streaming its progress.

        Args:
            latent_dim: latent dimensions, 2 to 16.
            beta: KL weight, 0 to 8 (1 is the ELBO; large values collapse the posterior).
            epochs: passes over the 4,000 images, 1 to 30.
            likelihood: "bernoulli" or "gaussian" (fixed std 0.1).
            budget: CPU seconds at most, 5 to 90; training stops there even if epochs remain.

        Yields:
            A progress line (Markdown), the loss curve so far, the latent map (PNG), the model's zip once done
            (else None) and its name in the page (else "").
        """
        latent_dim = as_int(latent_dim, "latent dimensions", 2, MAX_LATENT)
        beta = as_float(beta, "beta", 0.0, 8.0)
        epochs = as_int(epochs, "epochs", 1, MAX_EPOCHS)
        likelihood = as_choice(likelihood, "likelihood", ("bernoulli", "gaussian"))
        budget = as_float(budget, "budget", 5.0, MAX_BUDGET_S)
        torch.manual_seed(0)
        model = VariationalAutoencoder(784, HIDDEN, latent_dim, likelihood=likelihood)
        images = bundled_images("fashion-mnist", "train").unit()
        curve: list[dict[str, float]] = []
        last_map, shown = -MAP_EVERY_S, None
        progress = None
        for progress in train_live(model, images, epochs=epochs, beta=beta, budget_seconds=budget,
                                   report_every=REPORT_EVERY_S):  # fmt: skip
            curve.append({"epoch": round(progress.epoch, 3), "-ELBO (nats)": progress.loss, "KL (nats)": progress.kl})
            if progress.seconds - last_map >= MAP_EVERY_S or progress.done:
                shown = live_map(model, f"epoch {progress.epoch:.1f}: posterior means of 2,000 test images")
                last_map = progress.seconds
                model.train()
            text = (
                f"Epoch {progress.epoch:.1f} of {epochs} ({progress.step} of {progress.total_steps} steps), "
                f"{progress.seconds:.0f} s of {budget:.0f}: -ELBO {progress.loss:.1f} nats, KL {progress.kl:.1f}"
            )
            yield text, pd.DataFrame(curve), shown, None, ""
        if progress is None:
            raise Rejected("the training took no step")
        sample = bundled_images("fashion-mnist", "test")
        test = evaluate(model, sample.unit(), k=0)
        name = f"trained-{uuid.uuid4().hex[:8]}"
        metrics = {"dataset": "fashion-mnist", "test": test, "train_seconds": round(progress.seconds, 2),
                   "config": {"latent_dim": latent_dim, "beta": beta, "epochs": epochs, "likelihood": likelihood,
                              "hidden_dim": HIDDEN, "train_images": len(images)}}  # fmt: skip
        loaded = LoadedModel(name, model, "", metrics, [float(v) for v in test["kl_per_dim"]])
        self.store.add_trained(loaded)
        stop = " (the time budget ran out first)" if progress.stopped_by_budget else ""
        text = (
            f"**Done{stop}**: {progress.epoch:.1f} epochs in {progress.seconds:.0f} s. Test -ELBO "
            f"{test['loss']:.1f} nats on 2,000 images, {test['active_units']} of {latent_dim} active units. "
            f"It is now the model in use, as **{name}**, in every tab (for this page; kept in memory only): "
            "download it to keep it."
        )
        yield text, pd.DataFrame(curve), shown, save_zip(model, name, metrics), name
