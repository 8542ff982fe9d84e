"""``train``: the one entry point of ``vae-hub train``, which picks the loop the model needs."""

from __future__ import annotations

from typing import Any

from .config import TrainConfig
from .trainer import Trainer
from .vq_trainer import VQTrainer


def train(config: TrainConfig) -> dict[str, Any]:
    """Train a model as ``vae-hub train`` does: the loop, the checkpoints, then the model folder.

    Args:
        config: Every setting of the run (the fields are the command's flags).

    Returns:
        The final metrics, as written to ``metrics.json`` (test figures, the per-epoch history, the hardware).

    Raises:
        TrainingDivergedError: On a NaN or infinite loss; the last good checkpoint is kept.
        DataError: When the data cannot be read.
        ValueError: For settings out of range, naming the flag (before any data is read).
    """
    trainer = VQTrainer(config) if config.model == "vqvae" else Trainer(config)
    return trainer.run()
