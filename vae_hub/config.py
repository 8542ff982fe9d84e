"""What defines a training run: one dataclass, whose fields (with their help and choices) are also the CLI's flags.

Adding a training option is one edit here: ``vae-hub train`` builds its argument parser from these fields.
"""

from __future__ import annotations

import math
import os
from dataclasses import Field, dataclass, field
from pathlib import Path
from typing import Any

from .base import LIKELIHOODS, MAX_SIDE
from .data import DATASETS
from .precision import resolve_mixed_precision

MODELS = ("mlp", "conv")  # the seed's MLP VAE, the ConvVAE
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "no", "fp16", "bf16")
TRACKERS = ("none", "tensorboard", "trackio", "wandb")  # Accelerate's trackers (pip install the one you use)


def option(
    default: Any, help: str, *, choices: tuple[str, ...] | None = None, flag: str | None = None, metavar: str = ""
) -> Any:
    """A dataclass field with what its flag needs: help, choices, and a flag name and metavar if not derived."""
    metadata = {"help": help, "choices": choices, "flag": flag, "metavar": metavar}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def flag_name(f: Field) -> str:
    """The command-line flag of a dataclass field: its ``flag`` metadata, else ``--field-name``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the flags of ``vae-hub train``)."""

    model: str = option("mlp", "the seed's MLP VAE or the ConvVAE", choices=MODELS)
    dataset: str = option(
        "mnist",
        f"a data set ({', '.join(DATASETS)}), a folder of images (class labels from sub-folder names), a folder "
        "written by datasets' save_to_disk, parquet file(s), or a Hugging Face Hub dataset id",
        metavar="NAME|PATH|HUB_ID",
    )
    data_dir: str = option("data", "for a named data set: torchvision layout, or a folder with the IDX (.gz) files")
    image_size: int | None = option(None, "your images: scale and centre-crop to SxS (default: their own size)",
                                    metavar="S")  # fmt: skip
    channels: int | None = option(None, "your images: 1 (grey) or 3 (RGB) (default: 3 if any is in colour)",
                                  metavar="C")  # fmt: skip
    test_fraction: float = option(0.1, "your images: the share held out for testing when there is no test split")
    strict_data: bool = option(False, "your images: refuse the data if a file is unreadable (default: skip it)")
    image_column: str | None = option(None, "a Hugging Face dataset's image column (default: detected)", metavar="NAME")
    label_column: str | None = option(None, "a Hugging Face dataset's label column (default: detected)", metavar="NAME")
    split: str = option("train", "a Hugging Face dataset's split to train on")
    test_split: str | None = option(None, "a Hugging Face dataset's test split (default: 'test' when there is one)",
                                    metavar="NAME")  # fmt: skip
    output_dir: str = option("runs/vae", "where the model folder (and its checkpoints) is written")
    hidden_dim: int = option(400, "hidden layer width")
    latent_dim: int = option(20, "latent dimensions")
    base_channels: int = option(32, "ConvVAE width: channels of its first convolution")
    res_blocks: int = option(0, "ConvVAE depth: residual blocks at each resolution (0: the plain ConvVAE)")
    num_downsamples: int | None = option(
        None,
        "ConvVAE: stride-2 convolutions (default: halve while the side stays even and >= 4; 28 -> 7x7)",
        metavar="N",
    )
    likelihood: str = option("bernoulli", "the decoder's p(x|z)", choices=LIKELIHOODS)
    gaussian_std: float = option(0.1, "the Gaussian decoder's std")
    learn_std: bool = option(False, "learn the Gaussian decoder's std")
    epochs: int = option(10, "passes over the training images")
    batch_size: int = option(128, "images per step (per process)")
    lr: float = option(1e-3, "Adam's learning rate")
    lr_schedule: str = option("constant", "learning-rate schedule", choices=LR_SCHEDULES)
    lr_warmup: float = option(0.0, "epochs over which the learning rate ramps up linearly (before the schedule)")
    ema: float = option(
        0.0, "decay of an exponential moving average of the weights, evaluated and saved instead (0: off)"
    )
    iw_samples: int = option(1, "importance samples per image: K > 1 trains the IWAE bound, not the ELBO", metavar="K")
    beta: float = option(1.0, "KL weight (beta-VAE)")
    free_bits: float = option(0.0, "KL floor per latent dimension, nats")
    kl_warmup: float = option(0.0, "epochs over which the KL weight ramps from 0 to beta")
    binarize: bool = option(False, "dynamic binarization of the training images")
    conditional: bool = option(False, "a conditional VAE: q(z|x, y) and p(x|z, y) given the class labels")
    autoencoder: bool = option(
        False, "train a plain deterministic autoencoder (z = encoder(x), no KL): the VAE's foil, to compare with"
    )
    seed: int = option(0, "random seed")
    resume: bool = option(False, "continue from the latest checkpoint in --output-dir")
    mixed_precision: str = option(
        "auto",
        "precision of the training steps' matmuls (auto: bf16 where the CPU or GPU computes it natively, else fp32)",
        choices=PRECISIONS,
    )
    fused_step: bool = option(
        True, "train the seed's MLP with autograd instead of the hand-fused step", flag="--no-fused-step"
    )
    cpu: bool = option(False, "train on the CPU even if a GPU is present")
    eval_k: int = option(1000, "importance samples for the final NLL (0: skip)")
    eval_precision: str = option(
        "auto", "the final NLL's decoder precision (auto: bf16 when training in bf16)", choices=("auto", "fp32", "bf16")
    )
    max_train_images: int | None = option(None, "train on the first N images only", metavar="N")
    log_every: int = option(25, "steps between loss checks / progress-bar updates")
    download: bool = option(True, "never try to download data", flag="--no-download")
    cache_dir: str | None = option(None, "where unpacked data sets go (default ~/.cache/vae-hub)")
    model_name: str | None = option(None, "name shown on the model card")
    data_note: str = option("", "the card's 'Data:' line (default: the training split)")
    push_to_hub: str | None = option(None, "push the output folder to this Hub repo when done", metavar="REPO_ID")
    private: bool = option(False, "create the Hub repo as private")
    progress: bool = option(True, "no progress bars", flag="--no-progress")
    report_to: str = option("none", "log each epoch's figures and pictures (OUTPUT_DIR/logs)", choices=TRACKERS)
    extra_limitations: list[str] = option([], "a line for the card's limitations (repeatable)", flag="--limitation")

    @property
    def nll_precision(self) -> str:
        """The decoder precision of the final NLL: ``--eval-precision``, with auto following the training's."""
        if self.eval_precision == "auto":
            return "bf16" if resolve_mixed_precision(self.mixed_precision, self.cpu) == "bf16" else "fp32"
        return self.eval_precision

    def flag(self, name: str) -> str:
        """The command-line flag of field ``name``."""
        return flag_name(self.__dataclass_fields__[name])

    def check(self) -> None:
        """Every option in range, and the output folder usable, before any data is read; ValueError names each."""
        problems = []
        for name in ("model", "likelihood", "lr_schedule", "mixed_precision", "report_to", "eval_precision"):
            choices = self.__dataclass_fields__[name].metadata["choices"]
            if getattr(self, name) not in choices:
                problems.append(f"{self.flag(name)} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "hidden_dim", "latent_dim", "base_channels", "log_every", "iw_samples"):
            if getattr(self, name) < 1:
                problems.append(f"{self.flag(name)} must be >= 1, got {getattr(self, name)}")
        if self.image_size is not None and not 1 <= self.image_size <= MAX_SIDE:
            problems.append(f"--image-size must be in [1, {MAX_SIDE}], got {self.image_size}")
        if self.channels not in (None, 1, 3):
            problems.append(f"--channels must be 1 or 3, got {self.channels}")
        if not 0 < self.test_fraction < 1:
            problems.append(f"--test-fraction must be between 0 and 1, got {self.test_fraction}")
        if self.num_downsamples is not None and (self.num_downsamples < 1 or self.model != "conv"):
            problems.append(f"--num-downsamples must be >= 1 and is for --model conv only, got {self.num_downsamples}")
        if not self.dataset:
            problems.append("--dataset must name a data set, a folder or a Hub dataset id")
        if self.max_train_images is not None and self.max_train_images < 1:
            problems.append(
                f"--max-train-images must be >= 1 (or left out for all images), got {self.max_train_images}"
            )
        for name in ("lr", "beta", "free_bits", "kl_warmup", "lr_warmup", "gaussian_std"):
            value = getattr(self, name)
            positive = name in ("lr", "gaussian_std")
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                problems.append(
                    f"{self.flag(name)} must be a finite number {'> 0' if positive else '>= 0'}, got {value}"
                )
        if self.iw_samples > 1 and (self.beta != 1 or self.free_bits or self.kl_warmup):
            problems.append(
                f"--iw-samples {self.iw_samples} trains the IWAE bound, which has no KL term to weight: "
                "leave --beta at 1 and --free-bits and --kl-warmup at 0"
            )
        if self.autoencoder and (self.beta != 1 or self.free_bits or self.kl_warmup or self.iw_samples > 1):
            problems.append(
                "--autoencoder has no KL term and no q(z|x) to sample: leave --beta at 1, --free-bits and "
                "--kl-warmup at 0 and --iw-samples at 1"
            )
        if not (0 <= self.ema < 1):
            problems.append(f"--ema must be a decay in [0, 1) such as 0.999 (0 turns it off), got {self.ema}")
        if self.res_blocks < 0 or (self.res_blocks and self.model != "conv"):
            problems.append(f"--res-blocks must be >= 0 and is for --model conv only, got {self.res_blocks}")
        if self.eval_k < 0:
            problems.append(f"--eval-k must be >= 0 (0 skips the NLL), got {self.eval_k}")
        problems += output_dir_problems(self.output_dir)
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))


def output_dir_problems(output_dir: str) -> list[str]:
    """Why ``--output-dir`` cannot hold a run (empty when it can): it must be, or be creatable as, a writable folder."""
    path = Path(output_dir).expanduser()
    if path.exists() and not path.is_dir():
        return [f"--output-dir {output_dir} is a file; expected a folder (created if missing)"]
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return [f"--output-dir {output_dir} cannot be created: {existing} is a file, not a folder"]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [f"--output-dir {output_dir} cannot be written: no write permission in {existing}"]
    return []
