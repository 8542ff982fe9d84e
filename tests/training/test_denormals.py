"""Training treats denormal floats as zero (slow on Intel CPUs, and Adam's second moments reach them), then stops."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from vae_hub.precision import flush_denormals
from vae_hub.training.config import TrainConfig
from vae_hub.training.trainer import Trainer

TINY = 1e-39  # a denormal float32 (the smallest normal one is ~1.18e-38)


def survives(value: float = TINY) -> bool:
    """Whether arithmetic on this thread keeps a denormal instead of flushing it to zero."""
    return (torch.tensor([value]) * 1.0).item() != 0.0


def test_flush_denormals_zeroes_them_inside_and_restores_torchs_default_after():
    assert survives(), "torch's default keeps denormals"
    with flush_denormals() as supported:
        if not supported:
            pytest.skip("this CPU cannot flush denormals")
        assert not survives()
        assert survives(1e-37)  # normal floats are untouched
    assert survives()


def test_flush_denormals_restores_the_default_when_the_block_raises():
    with pytest.raises(RuntimeError), flush_denormals():
        raise RuntimeError("diverged")
    assert survives()


@pytest.mark.usefixtures("fresh_accelerator_state")
def test_the_trainer_flushes_denormals_during_its_epochs_only(tmp_path, mnist_dir, monkeypatch):
    seen = []
    train_epoch = Trainer.train_epoch

    def recorded(self, epoch):
        seen.append(survives())
        return train_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", recorded)
    config = TrainConfig(
        dataset="mnist", data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "run"), epochs=2, batch_size=32,
        hidden_dim=16, latent_dim=2, eval_k=0, progress=False, download=False, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    with flush_denormals() as supported:
        pass
    Trainer(config).run()
    assert seen == ([False, False] if supported else [True, True])
    assert survives()


def test_threads_started_after_flush_denormals_in_this_process_flush_them_too():
    code = """
import threading, torch
from vae_hub.precision import flush_denormals_in_this_process
def survives():
    return (torch.tensor([1e-39]) * 1.0).item() != 0.0
supported = flush_denormals_in_this_process()
seen = []
worker = threading.Thread(target=lambda: seen.append(survives()))
worker.start()
worker.join()
print(supported, survives(), seen[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "True":
        pytest.skip("this CPU cannot flush denormals")
    assert out[1:] == ["False", "False"]  # flushed in this thread and in the one started after
