"""Train a VAE; the output folder is a Hub model repo (config, weights, card, metrics, pictures), optionally pushed.

Example: vae-hub train --model conv --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist
Several processes or a GPU: accelerate launch --num_processes 2 -m vae_hub train ...
"""

from __future__ import annotations

import argparse

from ..allocator import keep_freed_memory
from ..errors import CheckpointError, DataNotFoundError, PublishError, TrainingDivergedError
from ..precision import flush_denormals_in_this_process
from ..training.config import TrainConfig
from ..training.run import train
from .options import add_dataclass_options, dataclass_from_args, error


def configure(p: argparse.ArgumentParser) -> None:
    add_dataclass_options(p, TrainConfig)


def prepare_process() -> None:
    """Settings for a process that trains and exits, made by the console command (``cli.entry``) before anything
    else: no page faults per step (``keep_freed_memory``), no denormals in any thread (set before torch starts
    its worker threads, which copy it). Not made by ``main(["train", ...])`` called in a longer-lived process."""
    keep_freed_memory()
    flush_denormals_in_this_process()


def run(args: argparse.Namespace) -> int:
    try:
        config = dataclass_from_args(TrainConfig, args)
        train(config)
    except (ValueError, DataNotFoundError, TrainingDivergedError, CheckpointError) as e:
        error(str(e))
        return 2
    except PublishError as e:
        error(f"training finished and {config.output_dir} is complete, but the push failed: {e}")
        error(f"retry with: vae-hub publish {config.output_dir} {config.push_to_hub}")
        return 3
    return 0
