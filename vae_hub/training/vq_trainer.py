"""Training a VQ-VAE in two stages, by the same loop, checkpoints and ``--resume`` as a VAE's (``Trainer``).

Stage 1 (``--epochs``): the encoder, codebook and decoder, by reconstruction plus the commitment loss; the codebook
follows the encoder by moving averages. Stage 2 (``--prior-epochs``): the causal-transformer prior over code grids,
by the negative log-likelihood of the training images' grids (encoded batch by batch with the frozen stage-1
model). The checkpoints count the epochs of both stages, so a run cut off in either resumes where it was.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..data.image_data import to_unit
from ..evaluation.summary import evaluate_vq
from ..models.vqvae import VQVAE, vq_loss
from .config import TrainConfig
from .trainer import Trainer, lr_factor

STAGES = ("autoencoder", "prior")  # what each stage trains, as metrics.json's history names it


class VQTrainer(Trainer):
    """A ``Trainer`` whose epochs are first the autoencoder's, then the code prior's."""

    model: VQVAE  # type: ignore[assignment]

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        if self.world > 1:
            raise ValueError(
                "--model vqvae trains in one process: its moving-average codebook is not kept in step across "
                f"processes, and {self.world} were started (run vae-hub train without accelerate launch)"
            )

    def prepare_model(self) -> torch.nn.Module:
        """The model itself: one process, and ``step`` autocasts where it trains, so each epoch's evaluation (which
        calls ``forward``) runs in fp32 like ``vae-hub evaluate``, not under the autocast Accelerate would wrap."""
        return self.model

    @property
    def total_epochs(self) -> int:
        return self.config.epochs + self.config.prior_epochs

    def stage(self, epoch: int) -> str:
        """Which stage ``epoch`` (counted from 0 over both stages) trains."""
        return STAGES[epoch >= self.config.epochs]

    def epoch_label(self, epoch: int) -> str:
        config = self.config
        if self.stage(epoch) == "autoencoder":
            return f"autoencoder epoch {epoch + 1}/{config.epochs}"
        return f"prior epoch {epoch + 1 - config.epochs}/{config.prior_epochs}"

    def lr_factor(self, step: int) -> float:
        """Each stage has its own warm-up and schedule: the prior's starts afresh."""
        config, first = self.config, self.steps_per_epoch * self.config.epochs
        if step < first:
            return lr_factor(step, first, round(config.lr_warmup * self.steps_per_epoch), config.lr_schedule)
        return lr_factor(step - first, self.steps_per_epoch * config.prior_epochs, 0, config.lr_schedule)

    def postfix(self, values: list[float], seen: int, epoch: int) -> dict[str, str]:
        if self.stage(epoch) == "autoencoder":
            return {"recon": f"{values[2] / seen:.2f}", "commitment": f"{values[3] / seen:.3f}"}
        return {"code_length": f"{values[0] / seen:.2f}"}

    def step(self, x: Tensor, y: Tensor | None, step: int) -> Tensor:
        """Stage 1: (loss, recon, recon, commitment) sums; stage 2: the codes' negative log-likelihood, thrice, 0."""
        config, accel = self.config, self.accelerator
        x = torch.bernoulli(to_unit(x)) if config.binarize else to_unit(x)
        x = x.contiguous(memory_format=torch.channels_last)
        model = self.model
        if step < self.steps_per_epoch * config.epochs:
            with accel.autocast():
                out = vq_loss(model, x)
            self.optimizer.zero_grad(set_to_none=True)
            accel.backward(out.loss)
            recon = out.recon_sum.detach()
            return torch.stack([out.loss.detach(), recon, recon, out.commitment_sum.detach()])
        with torch.no_grad():
            codes = model.quantizer.nearest(model.encoder(x))
        with accel.autocast():
            loss = -model.code_prior.log_prob(codes).sum()
        self.optimizer.zero_grad(set_to_none=True)
        accel.backward(loss)
        nll = loss.detach()
        return torch.stack([nll, nll, nll, torch.zeros_like(nll)])

    def end_epoch(self, epoch: int, sums: Tensor, *, seconds: float, train_seconds: float) -> None:
        accel, seen = self.accelerator, self.n_train
        stage = self.stage(epoch)
        stats: dict[str, Any] = {"epoch": epoch + 1, "stage": stage, "lr": self.scheduler.get_last_lr()[0]}
        test = self.last_test = evaluate_vq(self.model, self.test_images, prior=stage == "prior")
        if stage == "autoencoder":
            stats |= {"train_loss": float(sums[2]) / seen, "train_commitment": float(sums[3]) / seen,
                      "test_loss": test["recon"], "test_commitment": test["commitment"],
                      "perplexity": round(test["perplexity"], 2)}  # fmt: skip
            line = (f"reconstruction: train {stats['train_loss']:.2f}, test {test['recon']:.2f} | commitment "
                    f"{test['commitment']:.3f} | codebook perplexity {test['perplexity']:.1f} of "
                    f"{self.model.num_codes}")  # fmt: skip
        else:
            stats |= {"train_loss": float(sums[0]) / seen, "test_loss": test["code_length"]}
            line = (f"code length: train {stats['train_loss']:.2f}, test {test['code_length']:.2f} nats | "
                    f"NLL bound {test['nll_bound']:.2f}")  # fmt: skip
        stats |= {"seconds": round(seconds, 2), "train_epoch_seconds": round(train_seconds, 3)}
        self.history.append(stats)
        accel.print(f"{self.epoch_label(epoch)}: {line}")
        self.save_checkpoint(epoch)
