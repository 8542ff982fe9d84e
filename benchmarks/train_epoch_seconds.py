"""Seconds per training epoch of the MLP VAE on Fashion-MNIST through autograd (--no-fused-step), in one process.

Run from the root of a checkout to time that checkout's code (the package is imported from the current folder):
    python benchmarks/train_epoch_seconds.py /usr/share/datasets/fashion-mnist
"""

import sys
import tempfile
import time

sys.path.insert(0, ".")

from vae_hub.precision import flush_denormals  # noqa: E402
from vae_hub.training.config import TrainConfig  # noqa: E402
from vae_hub.training.trainer import Trainer  # noqa: E402

config = TrainConfig(
    dataset="fashion-mnist",
    data_dir=sys.argv[1],
    cache_dir=tempfile.mkdtemp(),
    output_dir=tempfile.mkdtemp(),
    cpu=True,
    progress=False,
    epochs=6,
    eval_k=0,
    fused_step=False,
)
trainer = Trainer(config)
trainer.ddp_model = trainer.accelerator.prepare(trainer.model, device_placement=[False])
seconds = []
with flush_denormals():
    for epoch in range(config.epochs):
        start = time.perf_counter()
        trainer.train_epoch(epoch)
        seconds.append(time.perf_counter() - start)
print("epoch seconds:", [round(s, 3) for s in seconds], "mean", round(sum(seconds) / len(seconds), 3))
