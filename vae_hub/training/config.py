"""What defines a training run: one dataclass, whose fields (with their help and choices) are also the CLI's flags.

Adding a training option is one edit here: ``vae-hub train`` builds its argument parser from these fields. The data
settings are ``DataSpec``'s; a model setting's range is its model class's ``config_rules``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..data.spec import DataSpec
from ..errors import FieldError
from ..models import MODEL_TYPES
from ..models.base import LIKELIHOODS, PRIORS
from ..models.vqvae import VQVAE
from ..settings import flag_name, option

MODELS = (*MODEL_TYPES, "vqvae")  # --model's choices: the VAEs, then the VQ-VAE (its own two-stage training)
RULES = {**{name: cls.config_rules for name, cls in MODEL_TYPES.items()}, "vqvae": VQVAE.config_rules}
# what --model vqvae has no use for: these flags must stay at their defaults with it
VAE_ONLY = ("latent_dim", "hidden_dim", "prior", "likelihood", "learn_std", "ema", "iw_samples", "beta", "free_bits",
            "kl_warmup", "conditional", "autoencoder")  # fmt: skip
VQ_ONLY = ("num_codes", "code_dim", "commitment", "prior_epochs")
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "no", "fp16", "bf16")
TRACKERS = ("none", "tensorboard", "trackio", "wandb")  # Accelerate's trackers (pip install the one you use)


@dataclass
class TrainConfig(DataSpec):
    """Everything that defines a training run (the flags of ``vae-hub train``): the data's settings, then the
    model's, the objective's and the optimiser's. Fields marked ``resumable`` may change on ``--resume``."""

    model: str = option(
        "mlp",
        "the classic MLP VAE (Kingma & Welling: 784-400-20 on MNIST), a convolutional VAE, a hierarchical VAE "
        "(a top vector and a latent map per resolution, inferred top-down), or a VQ-VAE (a grid of codebook "
        "entries, then a learned prior over the grids)",
        choices=MODELS,
    )
    output_dir: str = option("runs/vae", "where the model folder (and its checkpoints) is written")
    hidden_dim: int = option(400, "hidden layer width")
    latent_dim: int = option(20, "latent dimensions")
    base_channels: int = option(32, "conv, hvae and vqvae width: channels of the first convolution")
    res_blocks: int | None = option(
        None,
        "conv, hvae and vqvae depth: residual blocks at each resolution (default: 0 for conv, the plain ConvVAE; 1 "
        "for hvae; 2 for vqvae)",
        metavar="N",
    )
    num_downsamples: int | None = option(
        None,
        "conv, hvae and vqvae: stride-2 convolutions (default: halve while the side stays even and >= 4; 28 -> 7x7)",
        metavar="N",
    )
    latent_channels: int = option(8, "hvae: channels of each lower latent map (one map per resolution)")
    pixel_context: int = option(
        0,
        "hvae: an autoregressive decoder, each pixel also reading the pixels decoded before it up to N rows above and "
        "N columns to each side (0: pixels independent given the codes)",
        metavar="N",
    )
    prior: str = option(
        "standard",
        "p(z) of mlp and conv: N(0, I), or the VampPrior (a mixture of the posteriors of learned pseudo-inputs)",
        choices=PRIORS,
    )
    pseudo_inputs: int = option(500, "the VampPrior's components: learned pseudo-input images", metavar="K")
    num_codes: int = option(256, "vqvae: codebook entries", metavar="K")
    code_dim: int = option(32, "vqvae: dimension of each codebook entry")
    commitment: float = option(0.25, "vqvae: weight of the commitment loss that keeps the encoder near its entries")
    prior_epochs: int = option(
        20, "vqvae: epochs of the second stage, which trains the prior over the training images' code grids"
    )
    likelihood: str = option("bernoulli", "the decoder's p(x|z)", choices=LIKELIHOODS)
    gaussian_std: float = option(0.1, "the Gaussian decoder's std")
    learn_std: bool = option(False, "learn the Gaussian decoder's std")
    epochs: int = option(10, "passes over the training images")
    batch_size: int = option(128, "images per step (per process)")
    lr: float = option(1e-3, "Adam's learning rate", resumable=True)
    lr_schedule: str = option("constant", "learning-rate schedule", choices=LR_SCHEDULES)
    lr_warmup: float = option(0.0, "epochs over which the learning rate ramps up linearly (before the schedule)")
    ema: float = option(
        0.0, "decay of an exponential moving average of the weights, evaluated and saved instead (0: off)"
    )
    iw_samples: int = option(1, "importance samples per image: K > 1 trains the IWAE bound, not the ELBO", metavar="K")
    beta: float = option(1.0, "KL weight (beta-VAE)")
    free_bits: float = option(0.0, "KL floor per latent dimension, nats")
    kl_warmup: float = option(0.0, "epochs over which the KL weight ramps from 0 to beta")
    conditional: bool = option(False, "a conditional VAE: q(z|x, y) and p(x|z, y) given the class labels")
    autoencoder: bool = option(
        False, "train a plain deterministic autoencoder (z = encoder(x), no KL): the VAE's foil, to compare with"
    )
    resume: bool = option(False, "continue from the latest checkpoint in --output-dir", resumable=True)
    mixed_precision: str = option(
        "auto",
        "precision of the training steps' matmuls (auto: bf16 where the CPU or GPU computes it natively, else fp32)",
        choices=PRECISIONS,
    )
    fused_step: bool = option(
        True, "train the MLP VAE with autograd instead of the hand-fused step", flag="--no-fused-step", resumable=True
    )
    cpu: bool = option(False, "train on the CPU even if a GPU is present")
    eval_k: int = option(1000, "importance samples for the final NLL (0: skip)", resumable=True)
    eval_precision: str = option(
        "auto",
        "the final NLL's decoder precision (auto: bf16 where the CPU or GPU computes it natively, else fp32)",
        choices=("auto", "fp32", "bf16"),
        resumable=True,
    )
    log_every: int = option(25, "steps between loss checks / progress-bar updates")
    model_name: str | None = option(None, "name shown on the model card")
    data_note: str = option("", "the card's 'Data:' line (default: the training split)")
    push_to_hub: str | None = option(
        None, "push the output folder to this Hub repo when done", metavar="REPO_ID", resumable=True
    )
    private: bool = option(False, "create the Hub repo as private", resumable=True)
    progress: bool = option(True, "no progress bars", flag="--no-progress", resumable=True)
    report_to: str = option(
        "none", "log each epoch's figures and pictures (OUTPUT_DIR/logs)", choices=TRACKERS, resumable=True
    )
    extra_limitations: list[str] = option([], "a line for the card's limitations (repeatable)", flag="--limitation")

    def flag(self, name: str) -> str:
        """The command-line flag of a field.

        Args:
            name: A field's name, e.g. ``"latent_dim"``.

        Returns:
            Its flag, e.g. ``"--latent-dim"``.
        """
        return flag_name(self.__dataclass_fields__[name])

    def check(self) -> None:
        """Every option in range, and the output folder usable, before any data is read; ValueError names each.

        A model setting is checked by the rule the model class applies to its ``config.json``, so a run never writes
        a folder that ``from_pretrained`` would refuse.
        """
        problems = self.data_problems()
        for name in ("model", "likelihood", "prior", "lr_schedule", "mixed_precision", "report_to", "eval_precision"):
            choices = self.__dataclass_fields__[name].metadata["choices"]
            if getattr(self, name) not in choices:
                problems.append(f"{self.flag(name)} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.model in RULES:
            problems += self.model_problems()
        for name in ("epochs", "batch_size", "log_every", "iw_samples", "prior_epochs"):
            if getattr(self, name) < 1:
                problems.append(f"{self.flag(name)} must be >= 1, got {getattr(self, name)}")
        spatial = ("conv", "hvae", "vqvae")
        if self.num_downsamples is not None and self.model not in spatial:
            problems.append(f"--num-downsamples is for --model conv, hvae or vqvae only, got {self.num_downsamples}")
        if self.res_blocks is not None and self.model not in spatial:
            problems.append(f"--res-blocks is for --model conv, hvae or vqvae only, got {self.res_blocks}")
        problems += self.vq_problems()
        for name in ("latent_channels", "pixel_context"):
            if getattr(self, name) != self.default(name) and self.model != "hvae":
                problems.append(f"{self.flag(name)} is for --model hvae only, got {getattr(self, name)}")
        if self.prior == "vamp" and self.model != "vqvae":
            settings = {"--model hvae": self.model == "hvae", "--conditional": self.conditional,
                        "--autoencoder": self.autoencoder, "--free-bits": self.free_bits > 0}  # fmt: skip
            clashes = [flag for flag, on in settings.items() if on]
            if clashes:
                problems.append(f"--prior vamp is for an unconditional mlp or conv VAE without free bits: leave out "
                                f"{', '.join(clashes)}")  # fmt: skip
        elif self.pseudo_inputs != self.default("pseudo_inputs"):
            problems.append(f"--pseudo-inputs is for --prior vamp only, got {self.pseudo_inputs}")
        if self.model == "hvae" and (self.conditional or self.autoencoder):
            problems.append(
                "--model hvae is neither conditional nor a plain autoencoder: leave out "
                f"{'--conditional' if self.conditional else '--autoencoder'}"
            )
        for name in ("lr", "beta", "free_bits", "kl_warmup", "lr_warmup"):
            value = getattr(self, name)
            positive = name == "lr"
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
        if self.eval_k < 0:
            problems.append(f"--eval-k must be >= 0 (0 skips the NLL), got {self.eval_k}")
        problems += output_dir_problems(self.output_dir)
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def model_problems(self) -> list[str]:
        """The model settings that the chosen model class's ``config_rules`` refuse.

        Returns:
            One message per refused setting, naming its flag and its range; empty when none is.
        """
        problems = []
        for name, rule in RULES[self.model].items():
            value = getattr(self, name, None)
            if name in self.__dataclass_fields__ and value is not None:
                try:
                    rule.check(self.flag(name), value)
                except FieldError as e:
                    problems.append(str(e))
        return problems

    def default(self, name: str) -> object:
        """A field's default value."""
        return self.__dataclass_fields__[name].default

    def vq_problems(self) -> list[str]:
        """The flags set for the wrong kind of model: a VAE's with ``--model vqvae``, a VQ-VAE's with another."""
        if self.model == "vqvae":
            changed = [self.flag(n) for n in VAE_ONLY if getattr(self, n) != self.default(n)]
            if changed:
                return [f"--model vqvae has no Gaussian latent, KL term or VAE prior: leave out {', '.join(changed)}"]
            return []
        changed = [self.flag(n) for n in VQ_ONLY if getattr(self, n) != self.default(n)]
        return [f"{', '.join(changed)}: for --model vqvae only"] if changed else []

    @classmethod
    def resumable(cls) -> set[str]:
        """The settings that may differ from the checkpoint's on ``--resume`` (the others print a warning).

        Returns:
            Field names.
        """
        return {f.name for f in cls.__dataclass_fields__.values() if f.metadata.get("resumable")}


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
