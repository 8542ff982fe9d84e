"""Training on Hugging Face Accelerate: the same loop on a CPU, one GPU, or many processes.

The data set is held in memory as one tensor; each step indexes a batch out of it (no per-sample transform).
After every epoch an atomic checkpoint (safetensors + JSON) is written; ``resume=True`` continues from the latest one
with the same final weights as an uninterrupted run. At the end the output folder is a Hub model repo: config,
weights, model card, ``metrics.json`` and pictures.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import Tensor
from tqdm.auto import tqdm

from . import checkpoint
from .base import BaseVAE
from .card import model_card
from .data import DATASETS, load_dataset
from .evaluation import evaluate
from .hub import atomic_write
from .losses import elbo, kl_warmup
from .models import ConvVAE, VariationalAutoencoder
from .plots import save_reconstructions, save_samples, save_training_curves

CHECKPOINTS = "checkpoints"


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (the flags of ``scripts/train.py``)."""

    model: str = "mlp"  # mlp | conv
    dataset: str = "mnist"
    data_dir: str = "data"
    output_dir: str = "runs/vae"
    hidden_dim: int = 400
    latent_dim: int = 20
    base_channels: int = 32
    likelihood: str = "bernoulli"
    gaussian_std: float = 0.1
    learn_std: bool = False
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | cosine
    beta: float = 1.0
    free_bits: float = 0.0
    kl_warmup: float = 0.0  # epochs over which the KL weight ramps from 0 to beta
    binarize: bool = False
    seed: int = 0
    resume: bool = False
    mixed_precision: str = "no"  # no | fp16 | bf16
    cpu: bool = False
    eval_k: int = 1000  # importance samples for the final NLL (0: skip)
    max_train_images: int | None = None
    log_every: int = 25
    download: bool = True
    cache_dir: str | None = None
    model_name: str | None = None
    data_note: str = ""  # the card's "Data:" line (default: the data set's training split)
    push_to_hub: str | None = None
    private: bool = False
    progress: bool = True
    extra_limitations: list[str] = field(default_factory=list)

    def check(self) -> None:
        problems = []
        if self.model not in ("mlp", "conv"):
            problems.append(f"model must be 'mlp' or 'conv', got {self.model!r}")
        if self.dataset not in DATASETS:
            problems.append(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        for name in ("epochs", "batch_size", "hidden_dim", "latent_dim", "base_channels", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lr", "beta", "free_bits", "kl_warmup", "eval_k"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                problems.append(f"{name} must be a finite number {'> 0' if name == 'lr' else '>= 0'}, got {value}")
        if self.lr_schedule not in ("constant", "cosine"):
            problems.append(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            problems.append(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))


def diverged(loss: float | str, epoch: int, step: int, ckpt_dir: Path) -> TrainingDivergedError:
    good = checkpoint.latest(ckpt_dir)
    kept = f"the last good checkpoint, {good}, is kept" if good else "no checkpoint was written yet"
    return TrainingDivergedError(
        f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}; stopped, and {kept}. "
        "Try a lower --lr (with --resume to continue), --kl-warmup, or --free-bits."
    )


def build_model(config: TrainConfig, image_shape: tuple[int, int, int]) -> BaseVAE:
    likelihood = dict(likelihood=config.likelihood, gaussian_std=config.gaussian_std, learn_std=config.learn_std)
    if config.model == "mlp":
        return VariationalAutoencoder(
            math.prod(image_shape), config.hidden_dim, config.latent_dim, image_shape=image_shape, **likelihood
        )
    return ConvVAE(
        image_shape, latent_dim=config.latent_dim, base_channels=config.base_channels, hidden_dim=config.hidden_dim,
        **likelihood,
    )  # fmt: skip


def adam(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has one for the device (a third of the step time on a CPU)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without a fused Adam
        return torch.optim.Adam(params, lr=lr)


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int) -> Tensor:
    """This process's share of a permutation that depends only on (seed, epoch): equal shares for every process."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    per_process = n // world
    return perm[: per_process * world][rank::world]


def hyperparameters(config: TrainConfig, model: BaseVAE, n_train: int, world: int) -> dict[str, Any]:
    arch = (
        f"MLP {model.input_dim}-{config.hidden_dim}-{config.latent_dim}"
        if config.model == "mlp"
        else f"ConvVAE, base width {config.base_channels}, hidden {config.hidden_dim}, latent {config.latent_dim}"
    )
    return {
        "architecture": arch,
        "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
        "likelihood": config.likelihood + (" (dynamically binarized data)" if config.binarize else ""),
        "optimizer": f"Adam, lr {config.lr:g}, {config.lr_schedule} schedule",
        "batch size": f"{config.batch_size} x {world} process(es)",
        "epochs": config.epochs,
        "beta": config.beta,
        "free bits (nats/dim)": config.free_bits,
        "KL warm-up (epochs)": config.kl_warmup,
        "training images": f"{n_train:,}",
        "seed": config.seed,
        "mixed precision": config.mixed_precision,
    }


class Trainer:
    """One training run: set-up, resume, the epoch loop and the per-epoch checkpoint."""

    def __init__(self, config: TrainConfig) -> None:
        config.check()
        self.config = config
        self.accelerator = accel = Accelerator(mixed_precision=config.mixed_precision, cpu=config.cpu)
        self.rank, self.world, self.main = accel.process_index, accel.num_processes, accel.is_main_process
        set_seed(config.seed, device_specific=True)
        self.ckpt_dir = Path(config.output_dir) / CHECKPOINTS

        data_kwargs = dict(download=config.download, cache_dir=config.cache_dir)
        with accel.main_process_first():  # one process unpacks / downloads, the others then read
            train_set = load_dataset(config.dataset, config.data_dir, train=True, **data_kwargs)
            test_set = load_dataset(config.dataset, config.data_dir, train=False, **data_kwargs)
        self.train_images = train_set.images[: config.max_train_images].to(accel.device)
        self.test_images = test_set.images.to(accel.device)
        if config.binarize:  # a fixed binarization of the test set, the same in every run
            g = torch.Generator(device=self.test_images.device).manual_seed(12345)
            self.test_images = torch.bernoulli(self.test_images, generator=g)

        self.model = build_model(config, tuple(train_set.images.shape[1:])).to(accel.device)
        self.optimizer = adam(list(self.model.parameters()), config.lr)
        self.steps_per_epoch = math.ceil(len(self.train_images) // self.world / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = round(config.kl_warmup * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.start_epoch, self.history = 0, []

    def lr_factor(self, step: int) -> float:
        if self.config.lr_schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))

    def resume(self) -> None:
        """Restore model, optimizer, scheduler, RNG and history from the latest checkpoint, if any."""
        config, accel = self.config, self.accelerator
        latest = checkpoint.latest(self.ckpt_dir)
        if latest is None:
            accel.print(f"--resume: no checkpoint in {self.ckpt_dir}, starting from scratch")
            return
        state = checkpoint.load(latest, self.model, self.optimizer, self.rank, map_location=str(accel.device))
        ignored = {"resume", "progress", "push_to_hub", "private", "lr"}
        changed = sorted(k for k, v in asdict(config).items() if k not in ignored and state["config"].get(k) != v)
        if changed:
            accel.print(f"warning: resuming with settings that differ from the checkpoint's: {changed}")
        self.scheduler.load_state_dict(state["scheduler"])
        if state["config"]["lr"] != config.lr:  # a new --lr on resume takes effect (e.g. after divergence)
            accel.print(f"learning rate changed on resume: {state['config']['lr']:g} -> {config.lr:g}")
            self.scheduler.base_lrs = [config.lr for _ in self.optimizer.param_groups]
            for group in self.optimizer.param_groups:
                group["initial_lr"] = config.lr
                group["lr"] = config.lr * self.lr_factor(self.scheduler.last_epoch)
        self.start_epoch, self.history = state["epoch"], state["history"]
        accel.print(f"resumed from {latest} (epoch {self.start_epoch} of {config.epochs} done)")

    def run(self) -> dict[str, Any]:
        config, accel = self.config, self.accelerator
        if config.resume:
            self.resume()
        elif self.main and checkpoint.latest(self.ckpt_dir) is not None:
            accel.print(f"note: {self.ckpt_dir} holds an earlier run's checkpoint; it will be replaced (use --resume)")
        self.ddp_model, self.optimizer = accel.prepare(self.model, self.optimizer)
        start = time.perf_counter()
        for epoch in range(self.start_epoch, config.epochs):
            epoch_start = time.perf_counter()
            sums = self.train_epoch(epoch)
            self.train_seconds = time.perf_counter() - epoch_start
            self.end_epoch(epoch, sums, time.perf_counter() - start)
        metrics: dict[str, Any] = {}
        if self.main:
            final = accel.unwrap_model(self.ddp_model).eval()
            n_train = len(self.train_images)
            metrics = finish(
                config, final, self.test_images, self.history, time.perf_counter() - start, n_train, self.world
            )
        accel.wait_for_everyone()
        accel.end_training()
        return metrics

    def train_epoch(self, epoch: int) -> Tensor:
        """One pass over this process's share of the data; returns the summed (loss, -ELBO, recon, KL)."""
        config, accel = self.config, self.accelerator
        self.ddp_model.train()
        order = epoch_order(len(self.train_images), config.seed, epoch, self.rank, self.world).to(accel.device)
        sums = torch.zeros(4, device=accel.device, dtype=torch.float64)
        seen = 0
        bar = tqdm(
            order.split(config.batch_size),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (config.progress and self.main),
            unit="batch",
            dynamic_ncols=True,
        )
        for i, idx in enumerate(bar):
            x = self.train_images[idx]
            if config.binarize:
                x = torch.bernoulli(x)
            beta = kl_warmup(epoch * self.steps_per_epoch + i, self.warmup_steps, config.beta)
            with accel.autocast():
                out = elbo(self.ddp_model, x, beta=beta, free_bits=config.free_bits)
            self.optimizer.zero_grad(set_to_none=True)
            accel.backward(out.loss)
            self.optimizer.step()
            self.scheduler.step()
            parts = [out.loss.detach(), out.total_sum.detach(), out.recon_sum.detach(), out.kl_sum.detach()]
            sums += torch.stack(parts).double()
            seen += x.shape[0]
            if (i + 1) % config.log_every == 0 or i + 1 == len(bar):
                values = sums.tolist()  # the only host sync: every log_every steps
                if not all(math.isfinite(v) for v in values):
                    raise diverged(values[0], epoch, i, self.ckpt_dir)
                bar.set_postfix(loss=f"{values[0] / seen:.2f}", kl=f"{values[3] / seen:.2f}")
        return sums

    def end_epoch(self, epoch: int, sums: Tensor, seconds: float) -> None:
        """Log train and test figures, then write the epoch's checkpoint atomically."""
        config, accel = self.config, self.accelerator
        sums = accel.reduce(sums, reduction="sum")
        seen = (len(self.train_images) // self.world) * self.world
        stats = {
            "epoch": epoch + 1,
            "train_loss": float(sums[1]) / seen,
            "train_recon": float(sums[2]) / seen,
            "train_kl": float(sums[3]) / seen,
            "beta": kl_warmup((epoch + 1) * self.steps_per_epoch, self.warmup_steps, config.beta),
            "lr": self.scheduler.get_last_lr()[0],
        }
        staging = checkpoint.begin(self.ckpt_dir, epoch + 1) if self.main else None
        accel.wait_for_everyone()
        if self.main:
            test = evaluate(accel.unwrap_model(self.ddp_model), self.test_images, seed=epoch)
            stats |= {
                "test_loss": test["loss"],
                "test_recon": test["recon"],
                "test_kl": test["kl"],
                "active_units": test["active_units"],
                "seconds": round(seconds, 2),
                "train_epoch_seconds": round(self.train_seconds, 3),  # the training steps alone
            }
            self.history.append(stats)
            accel.print(
                f"epoch {epoch + 1}: train loss {stats['train_loss']:.2f} "
                f"(recon {stats['train_recon']:.2f}, KL {stats['train_kl']:.2f}) | "
                f"test loss {test['loss']:.2f} (recon {test['recon']:.2f}, KL {test['kl']:.2f}) | "
                f"active units {test['active_units']}/{config.latent_dim}"
            )
        checkpoint.write_rng(checkpoint.staging_dir(self.ckpt_dir, epoch + 1), self.rank)
        accel.wait_for_everyone()
        if self.main:
            state = {"config": asdict(config), "scheduler": self.scheduler.state_dict(), "history": self.history}
            model = accel.unwrap_model(self.ddp_model)
            checkpoint.commit(staging, self.ckpt_dir, epoch + 1, model, self.optimizer, state)
        accel.wait_for_everyone()


def train(config: TrainConfig) -> dict[str, Any]:
    """Run training; returns the final metrics. Raises ``TrainingDivergedError`` on a NaN/inf loss."""
    return Trainer(config).run()


def finish(
    config: TrainConfig,
    model: BaseVAE,
    test_images: Tensor,
    history: list[dict[str, Any]],
    train_seconds: float,
    n_train: int,
    world: int,
) -> dict[str, Any]:
    """Evaluate, then write the output folder as a Hub model repo (and push it, if asked)."""
    out_dir = Path(config.output_dir)
    test = evaluate(model, test_images, k=config.eval_k, seed=config.seed, progress=config.progress, desc="final eval")
    metrics = {
        "dataset": config.dataset,
        "split": "test",
        "test": test,
        "history": history,
        "train_seconds": round(train_seconds, 2),
        "config": {k: v for k, v in asdict(config).items() if k not in ("progress", "resume")},
    }
    model.save_pretrained(out_dir)  # config.json + model.safetensors (README.md is written below)
    atomic_write(out_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    save_samples(model, out_dir / "samples.png", seed=config.seed)
    save_reconstructions(model, test_images, out_dir / "reconstructions.png")
    if history:
        save_training_curves(history, out_dir / "training_curves.png")
    limitations = list(config.extra_limitations)
    full = DATASETS[config.dataset].train_size
    if n_train < full:
        limitations.insert(0, f"Trained on {n_train:,} images, not the full {full:,}-image training split.")
    card = model_card(
        model,
        test,
        dataset=config.dataset,
        hyperparameters=hyperparameters(config, model, n_train, world),
        repo_id=config.push_to_hub,
        model_name=config.model_name,
        dataset_note=config.data_note,
        extra_limitations=limitations,
        has_curves=bool(history),
    )
    atomic_write(out_dir / "README.md", lambda p: card.save(p))
    print(f"wrote {out_dir}: config.json, model.safetensors, README.md, metrics.json, PNGs")
    if config.push_to_hub:
        from .publish import publish

        url = publish(out_dir, config.push_to_hub, private=config.private, commit_message="Upload trained VAE")
        print(f"pushed to {url}")
    return metrics
