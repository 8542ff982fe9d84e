"""Train a VAE on a torchvision data set; the output folder is a Hub model repo (optionally pushed).

Usage: python scripts/train.py --model mlp --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist
Multi-process: accelerate launch --num_processes 2 scripts/train.py ...
"""

from __future__ import annotations

import argparse
import sys

from vae_hub.data import DATASETS, DataNotFoundError
from vae_hub.publish import PublishError
from vae_hub.training import TrainConfig, TrainingDivergedError, train


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["mlp", "conv"], default=d.model, help="the seed's MLP VAE or the ConvVAE")
    p.add_argument("--dataset", choices=list(DATASETS), default=d.dataset)
    p.add_argument("--data-dir", default=d.data_dir, help="torchvision layout, or a folder with the IDX (.gz) files")
    p.add_argument("--output-dir", default=d.output_dir)
    p.add_argument("--hidden-dim", type=int, default=d.hidden_dim)
    p.add_argument("--latent-dim", type=int, default=d.latent_dim)
    p.add_argument("--base-channels", type=int, default=d.base_channels, help="ConvVAE width")
    p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default=d.likelihood)
    p.add_argument("--gaussian-std", type=float, default=d.gaussian_std)
    p.add_argument("--learn-std", action="store_true", help="learn the Gaussian decoder's std")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default=d.lr_schedule)
    p.add_argument("--beta", type=float, default=d.beta, help="KL weight (beta-VAE)")
    p.add_argument("--free-bits", type=float, default=d.free_bits, help="KL floor per latent dimension, nats")
    p.add_argument("--kl-warmup", type=float, default=d.kl_warmup, help="epochs to ramp the KL weight from 0")
    p.add_argument("--binarize", action="store_true", help="dynamic binarization of the training images")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output-dir")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=d.mixed_precision)
    p.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    p.add_argument("--eval-k", type=int, default=d.eval_k, help="importance samples for the final NLL (0: skip)")
    p.add_argument("--max-train-images", type=int, default=None, help="train on the first N images only")
    p.add_argument("--no-download", dest="download", action="store_false", help="never try to download data")
    p.add_argument("--cache-dir", default=None, help="where unpacked data sets go (default ~/.cache/vae-hub)")
    p.add_argument("--model-name", default=None, help="name shown on the model card")
    p.add_argument("--data-note", default="", help="the card's 'Data:' line (default: the training split)")
    p.add_argument("--limitation", dest="extra_limitations", action="append", default=[], help="card note")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="push the output folder when done")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--log-every", type=int, default=d.log_every, help="steps between loss checks / bar updates")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return TrainConfig(**vars(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(argv)
        train(config)
    except (ValueError, DataNotFoundError, TrainingDivergedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except PublishError as e:
        print(
            f"error: training finished and {config.output_dir} is complete, but the push failed: {e}", file=sys.stderr
        )
        print(f"retry with: python scripts/publish.py {config.output_dir} {config.push_to_hub}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
