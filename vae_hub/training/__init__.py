"""Training: the run's settings (``TrainConfig``), the loop on Accelerate, checkpoints and the model folder.

``train(TrainConfig(...))`` is ``vae-hub train``; ``live.train_live`` trains a small model in memory for the Space.
"""

from .config import TrainConfig
from .run import train
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "train"]
