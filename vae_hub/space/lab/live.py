"""Train one live: a small MLP VAE trained on the bundled Fashion-MNIST subset in a worker process, streamed to the
page as it learns, then served to every tab and downloadable as a ``save_pretrained`` folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pandas as pd
from safetensors.torch import load

from ...models.mlp import VariationalAutoencoder
from ..inputs import Rejected, as_choice, as_float, as_int
from ..model_store import LoadedModel, ModelStore
from .live_worker import HIDDEN, LiveSettings, build_model

MAX_BUDGET_S = 90  # seconds of training a visitor may spend; one training at a time per Space (the event's concurrency)
MAX_EPOCHS = 30
MAX_LATENT = 16
START_S = 60  # the worker's start (Python, torch) and its final evaluation, on top of the budget, before it is stopped
POLL_S = 0.25  # how long the page waits for a message before checking on the worker (and letting a cancel through)
WORKER = "vae_hub.space.lab.live_worker"

log = logging.getLogger("vae-hub-space")


def save_zip(model: VariationalAutoencoder, name: str, metrics: dict[str, Any]) -> str:
    """The model as a zipped ``save_pretrained`` folder (config.json, model.safetensors, metrics.json)."""
    folder = Path(tempfile.mkdtemp(prefix="vae-hub-live-")) / name
    model.save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder.parent, base_dir=name)
    shutil.rmtree(folder)
    return archive


def ended(process: subprocess.Popen) -> str:
    """How a worker process ended, in words."""
    code = process.wait(timeout=10)
    if code < 0:
        return f"it was stopped by {signal.Signals(-code).name}"
    return f"it exited with code {code}"


class LiveTraining:
    """The live training tab's feature over the page's model store; each training runs in its own worker process."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.worker: subprocess.Popen | None = None  # the training's process while one runs

    def start(self, settings: LiveSettings) -> tuple[subprocess.Popen, Connection]:
        """Start a worker process for ``settings``; returns it and the end of the pipe it writes to."""
        read_fd, write_fd = os.pipe()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread from the start: the page keeps the other core
        try:
            process = subprocess.Popen([sys.executable, "-m", WORKER, str(write_fd), settings.to_json()],
                                       pass_fds=[write_fd], env=env, stdin=subprocess.DEVNULL)  # fmt: skip
        finally:
            os.close(write_fd)
        return process, Connection(read_fd, writable=False)

    def train(
        self, latent_dim: float = 2, beta: float = 1.0, epochs: float = 10, likelihood: str = "bernoulli",
        budget: float = 30,
    ) -> Iterator[tuple[str, pd.DataFrame, Any, Any, str]]:  # fmt: skip
        """Train a small VAE (784-256-latent MLP) on 4,000 bundled Fashion-MNIST images, streaming its progress.

        The training runs in its own process, with one thread at a lower priority, so that the page stays fast for
        everyone; stopping (cancelling) the request ends that process.

        Args:
            latent_dim: latent dimensions, 2 to 16.
            beta: KL weight, 0 to 8 (1 is the ELBO; large values collapse the posterior).
            epochs: passes over the 4,000 images, 1 to 30.
            likelihood: "bernoulli" or "gaussian" (fixed std 0.1).
            budget: seconds of training at most, 5 to 90; training stops there even if epochs remain.

        Yields:
            A progress line (Markdown), the loss curve so far, the latent map (PNG), the model's zip once done
            (else None) and its name in the page (else "").
        """
        settings = LiveSettings(
            latent_dim=as_int(latent_dim, "latent dimensions", 2, MAX_LATENT),
            beta=as_float(beta, "beta", 0.0, 8.0),
            epochs=as_int(epochs, "epochs", 1, MAX_EPOCHS),
            likelihood=as_choice(likelihood, "likelihood", ("bernoulli", "gaussian")),
            budget=as_float(budget, "budget", 5.0, MAX_BUDGET_S),
        )
        curve: list[dict[str, float]] = []
        shown = None
        process, receive = self.start(settings)
        self.worker = process
        deadline = time.monotonic() + settings.budget + START_S
        try:
            yield "Starting the training in its own process ...", pd.DataFrame(curve), None, None, ""
            while True:
                message = self.next_message(process, receive, deadline)
                if message is None:
                    continue
                if message[0] == "error":
                    log.warning("live training failed: %s", message[1])
                    raise Rejected("the live training failed (it is logged); the rest of the page is unaffected")
                progress = message[1]
                curve.append({"epoch": round(progress.epoch, 3), "-ELBO (nats)": progress.loss,
                              "KL (nats)": progress.kl})  # fmt: skip
                if message[0] == "done":
                    break
                shown = message[2] if message[2] is not None else shown
                text = (
                    f"Epoch {progress.epoch:.1f} of {settings.epochs} ({progress.step} of {progress.total_steps} "
                    f"steps), {progress.seconds:.0f} s of {settings.budget:.0f}: -ELBO {progress.loss:.1f} nats, "
                    f"KL {progress.kl:.1f}"
                )
                yield text, pd.DataFrame(curve), shown, None, ""
        finally:  # finished, failed or cancelled (Gradio closes this generator): the worker never outlives it
            receive.close()
            if process.poll() is None:
                process.kill()
            process.wait()
            self.worker = None
        _, progress, test, weights, n_images = message
        model = build_model(settings.latent_dim, settings.likelihood)
        model.load_state_dict(load(weights), strict=True)
        name = f"trained-{uuid.uuid4().hex[:8]}"
        metrics = {"dataset": "fashion-mnist", "test": test, "train_seconds": round(progress.seconds, 2),
                   "config": {"latent_dim": settings.latent_dim, "beta": settings.beta, "epochs": settings.epochs,
                              "likelihood": settings.likelihood, "hidden_dim": HIDDEN,
                              "train_images": n_images}}  # fmt: skip
        self.store.add_trained(LoadedModel(name, model, "", metrics, [float(v) for v in test["kl_per_dim"]]))
        stop = " (the time budget ran out first)" if progress.stopped_by_budget else ""
        text = (
            f"**Done{stop}**: {progress.epoch:.1f} epochs in {progress.seconds:.0f} s. Test -ELBO "
            f"{test['loss']:.1f} nats on 2,000 images, {test['active_units']} of {settings.latent_dim} active units. "
            f"It is now the model in use, as **{name}**, in every tab (for this page; kept in memory only): "
            "download it to keep it."
        )
        yield text, pd.DataFrame(curve), shown, save_zip(model, name, metrics), name

    @staticmethod
    def next_message(process: subprocess.Popen, receive: Connection, deadline: float) -> tuple[Any, ...] | None:
        """The worker's next message; None after ``POLL_S`` without one; a ``Rejected`` when the worker is gone."""
        if receive.poll(POLL_S):
            try:
                return receive.recv()
            except EOFError:
                pass  # the worker closed the pipe without a result: it ended
        elif process.poll() is None:
            if time.monotonic() < deadline:
                return None
            process.kill()
            log.warning("live training: its worker overran its budget by %d s and was stopped", START_S)
            raise Rejected("the live training took far longer than its budget and was stopped; please try again")
        how = ended(process)
        log.warning("live training: its worker process ended unexpectedly: %s", how)
        raise Rejected(
            f"the live training's process ended unexpectedly ({how}); the rest of the page is unaffected: "
            "press Train to try again"
        )
