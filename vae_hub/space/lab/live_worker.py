"""The live training's worker: its own process, one thread, a lower scheduling priority, so it cannot starve the page.

``LiveTraining`` (``live.py``) starts ``python -m vae_hub.space.lab.live_worker FD SETTINGS`` and reads what it
sends through the pipe ``FD``: ``("progress", Progress, map or None)`` as it trains, then ``("done", Progress, test
figures, weights, training images)`` with the weights as safetensors bytes, or ``("error", message)``. It imports
neither Gradio nor the page, and stops by itself when the page stops listening (a cancelled training: the pipe is
closed).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...models.mlp import VariationalAutoencoder

NICE = 10  # the page's requests go first on a shared CPU; the training takes what they leave
HIDDEN = 256
MAP_EVERY_S = 2.0  # the latent map is redrawn at most this often (drawing it costs ~0.2 s)
REPORT_EVERY_S = 0.3  # a point of the loss curve


@dataclass(frozen=True)
class LiveSettings:
    """What the visitor chose, already checked by the page."""

    latent_dim: int
    beta: float
    epochs: int
    likelihood: str
    budget: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def build_model(latent_dim: int, likelihood: str) -> VariationalAutoencoder:
    """The live model: a 784-256-latent MLP VAE, the same in the worker and in the page that serves it."""
    from ...models.mlp import VariationalAutoencoder

    return VariationalAutoencoder(784, HIDDEN, latent_dim, likelihood=likelihood)


def train(send: Connection, settings: LiveSettings) -> None:
    """Train on the bundled Fashion-MNIST images, sending progress, maps and finally the weights."""
    import torch
    from safetensors.torch import save

    from ...data.bundled import bundled_images
    from ...evaluation.summary import evaluate
    from ...training.live import train_live
    from .latent_codes import encode_sample

    torch.manual_seed(0)
    model = build_model(settings.latent_dim, settings.likelihood)
    images = bundled_images("fashion-mnist", "train").unit()
    last_map, progress = -MAP_EVERY_S, None
    for progress in train_live(model, images, epochs=settings.epochs, beta=settings.beta,
                               budget_seconds=settings.budget, report_every=REPORT_EVERY_S):  # fmt: skip
        picture = None
        if progress.seconds - last_map >= MAP_EVERY_S or progress.done:
            title = f"epoch {progress.epoch:.1f}: posterior means of 2,000 test images"
            picture = encode_sample(model, "fashion-mnist").draw(title)
            last_map = progress.seconds
            model.train()
        send.send(("progress", progress, picture))
    if progress is None:
        send.send(("error", "the training took no step"))
        return
    test = evaluate(model, bundled_images("fashion-mnist", "test").unit(), k=0)
    weights = save({k: v.contiguous() for k, v in model.state_dict().items()})
    send.send(("done", progress, test, weights, len(images)))


def main(fd: str, settings_json: str) -> int:
    with contextlib.suppress(OSError):  # not allowed here: the training still runs, at the page's priority
        os.nice(NICE)
    import torch

    torch.set_num_threads(1)
    send = Connection(int(fd), readable=False)
    try:
        train(send, LiveSettings(**json.loads(settings_json)))
    except (BrokenPipeError, ConnectionResetError):  # the page stopped listening: a cancelled training
        return 0
    except Exception as e:
        traceback.print_exc()  # into the Space's log
        with contextlib.suppress(OSError):
            send.send(("error", f"{type(e).__name__}: {e}"[:500]))
        return 1
    finally:
        send.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
