"""Training: the run's settings (``TrainConfig``), the loop on Accelerate, checkpoints and the model folder.

``train(TrainConfig(...))`` is ``vae-hub train``; ``live.train_live`` trains a small model in memory for the Space.
"""

from .config import TrainConfig
from .trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
