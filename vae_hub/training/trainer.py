"""Training on Hugging Face Accelerate: the same loop on a CPU, one GPU, or many processes.

The data set is held in memory as one uint8 tensor; each step indexes a batch out of it and scales it to [0, 1].
After every epoch an atomic checkpoint (safetensors + JSON) is written; ``resume=True`` continues from the latest one
with the same final weights as an uninterrupted run. At the end ``model_folder`` writes the output folder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from torch import Tensor
from tqdm.auto import tqdm

from ..data.image_data import Splits, fixed_binarization, to_unit
from ..data.sources import load_splits
from ..data.streaming import ImageStream
from ..errors import DataError, TrainingDivergedError
from ..evaluation.plots import import_matplotlib_in_the_background
from ..evaluation.summary import evaluate
from ..models import MODEL_TYPES
from ..models.base import BaseVAE
from ..models.hierarchical import HierarchicalVAE
from ..models.mlp import VariationalAutoencoder
from ..models.objectives import elbo, iwae, kl_warmup
from ..models.vqvae import VQVAE
from ..precision import flush_denormals, resolve_mixed_precision
from . import checkpoint
from .config import TrainConfig
from .fused_step import FusedMLPStep, fused_step_problem
from .optim import Adam, LRSchedule
from .run_folder import write_model_folder
from .tracking import log_epoch, tracker_config

CHECKPOINTS = "checkpoints"
LOGS = "logs"  # the trackers' files (TensorBoard's event files, ...)
DEVICE_COPY_MAX = 2 * 2**30  # bytes of a split moved to an accelerator whole; a larger one is copied a batch at a time


def diverged(loss: float | str, epoch: int, step: int, ckpt_dir: Path) -> TrainingDivergedError:
    good = checkpoint.latest(ckpt_dir)
    kept = f"the last good checkpoint, {good}, is kept" if good else "no checkpoint was written yet"
    return TrainingDivergedError(
        f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}; stopped, and {kept}. "
        "Try a lower --lr (with --resume to continue), --kl-warmup, or --free-bits."
    )


def auto_downsamples(side: int) -> int:
    """How many times to halve an image side: while it stays even and at least 4 (28 -> 7: 2; 64 -> 4: 4), >= 1."""
    n = 0
    while side % 2 == 0 and side // 2 >= 4:
        side, n = side // 2, n + 1
    return max(n, 1)


def build_model(
    config: TrainConfig, image_shape: tuple[int, int, int], class_names: list[str] | None = None
) -> BaseVAE | VQVAE:
    """The model ``config`` asks for; ``class_names`` make it conditional when ``config.conditional``."""
    downsamples = config.num_downsamples or auto_downsamples(min(image_shape[1:]))
    if config.model == "vqvae":
        res_blocks = 2 if config.res_blocks is None else config.res_blocks
        return VQVAE(image_shape, num_codes=config.num_codes, code_dim=config.code_dim,
                     base_channels=config.base_channels, num_downsamples=downsamples, res_blocks=res_blocks,
                     commitment=config.commitment)  # fmt: skip
    likelihood = dict(likelihood=config.likelihood, gaussian_std=config.gaussian_std, learn_std=config.learn_std)
    if config.autoencoder:
        likelihood |= dict(deterministic=True)
    if config.conditional:
        likelihood |= dict(num_classes=len(class_names or []), class_names=class_names)
    if config.prior != "standard":
        likelihood |= dict(prior=config.prior, pseudo_inputs=config.pseudo_inputs)
    cls = MODEL_TYPES[config.model]
    if cls is VariationalAutoencoder:
        return cls(math.prod(image_shape), config.hidden_dim, config.latent_dim, image_shape=image_shape, **likelihood)
    spatial = dict(
        latent_dim=config.latent_dim, base_channels=config.base_channels, hidden_dim=config.hidden_dim,
        num_downsamples=downsamples,
    )  # fmt: skip
    if cls is HierarchicalVAE:
        res_blocks = 1 if config.res_blocks is None else config.res_blocks
        return cls(image_shape, latent_channels=config.latent_channels, res_blocks=res_blocks,
                   pixel_context=config.pixel_context, **spatial, **likelihood)  # fmt: skip
    return cls(image_shape, res_blocks=config.res_blocks or 0, **spatial, **likelihood)


def moving_average(model: BaseVAE, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s weights (Polyak averaging): ema = decay * ema + (1 - decay) * w
    after every step. Buffers are copied, not averaged."""
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=False
    )


def adam(params: list[torch.nn.Parameter], lr: float) -> Adam:
    """Adam with the fused kernel where this torch has one for the device (a third of the step time on a CPU)."""
    return Adam(params, lr=lr)


def require_labels(data: Splits) -> None:
    """--conditional needs a class for every image."""
    unlabelled = int((data.train.labels < 0).sum()) + int((data.test.labels < 0).sum())
    if not data.class_names or unlabelled:
        raise DataError(
            f"--conditional needs a class label for every image, but {data.name} has "
            + (f"{unlabelled:,} image(s) without one" if data.class_names else "no labels")
            + ": put each class's images in a sub-folder named after it, or name the dataset's --label-column"
        )


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning rate's multiplier at ``step``: a linear ramp over ``warmup`` steps, then constant or a cosine
    decay to 0 at ``total`` (SGDR's half cosine, Loshchilov & Hutter, 2017)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    done = min(step - warmup, total - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * done))


def on_device(tensor: Tensor, device: torch.device) -> Tensor:
    """``tensor`` on ``device`` if it is at most ``DEVICE_COPY_MAX`` bytes, else where it is (a CPU tensor)."""
    if device.type == "cpu" or tensor.nbytes > DEVICE_COPY_MAX:
        return tensor
    return tensor.to(device)


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int) -> Tensor:
    """This process's share of a permutation that depends only on (seed, epoch): equal shares for every process."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    per_process = n // world
    return perm[: per_process * world][rank::world]


class Trainer:
    """One training run: set-up, resume, the epoch loop and the per-epoch checkpoint."""

    def __init__(self, config: TrainConfig) -> None:
        config.check()
        config.mixed_precision = resolve_mixed_precision(config.mixed_precision, config.cpu)  # "auto" -> what runs
        self.config = config
        tracking = config.report_to != "none"
        self.accelerator = accel = Accelerator(
            mixed_precision=config.mixed_precision, cpu=config.cpu, log_with=config.report_to if tracking else None,
            project_config=ProjectConfiguration(config.output_dir, logging_dir=Path(config.output_dir) / LOGS),
        )  # fmt: skip
        self.rank, self.world, self.main = accel.process_index, accel.num_processes, accel.is_main_process
        set_seed(config.seed, device_specific=True)
        self.ckpt_dir = Path(config.output_dir) / CHECKPOINTS

        with accel.main_process_first():  # one process unpacks / downloads / decodes, the others then read
            self.data = load_splits(config.data, progress=config.progress)
        train = self.data.train
        self.stream = train if isinstance(train, ImageStream) else None  # --streaming: batches read as training goes
        if self.stream is None:
            # uint8, mapped from the decoded cache for your own images: on an accelerator, a split larger than
            # DEVICE_COPY_MAX stays in host memory and each batch is copied over
            self.train_images = on_device(train.images[: config.max_train_images], accel.device)
            self.train_labels = on_device(train.labels[: config.max_train_images], self.train_images.device)
        self.test_images = on_device(self.data.test.images, accel.device)  # evaluate() scales each batch
        self.test_labels = on_device(self.data.test.labels, self.test_images.device)
        if config.conditional:
            require_labels(self.data)
        if config.binarize:
            self.test_images = fixed_binarization(to_unit(self.test_images))

        image_shape = self.stream.image_shape if self.stream else tuple(self.train_images.shape[1:])
        self.model = build_model(config, image_shape, self.data.class_names).to(accel.device)
        # convolutions in NHWC: oneDNN's fast layout, and the one where its bf16 kernels pay (~1.4x over fp32 here)
        self.channels_last = self.model.convolutional
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = adam(list(self.model.parameters()), config.lr)
        self.fused_step = self.make_fused_step()
        self.ema = moving_average(self.model, config.ema) if config.ema else None
        self.n_train = len(self.stream) if self.stream else len(self.train_images)
        self.steps_per_epoch = math.ceil(self.n_train // self.world / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = round(config.kl_warmup * self.steps_per_epoch)
        self.scheduler = LRSchedule(self.optimizer, self.lr_factor)
        self.start_epoch, self.history = 0, []
        self.last_test: dict[str, Any] | None = None  # the last epoch's full evaluation (main process)
        self.resumed_seconds = 0.0  # training time before a --resume

    def make_fused_step(self) -> FusedMLPStep | None:
        """The hand-fused step for the MLP VAE (fp32 or bf16) where it applies, else None (autograd)."""
        config = self.config
        if not config.fused_step or config.mixed_precision not in ("no", "bf16"):
            return None
        problem = fused_step_problem(
            self.model, iw_samples=config.iw_samples, free_bits=config.free_bits, processes=self.world
        )
        if problem is not None:
            return None
        return FusedMLPStep(self.model, torch.bfloat16 if config.mixed_precision == "bf16" else torch.float32)

    def evaluated_model(self) -> BaseVAE:
        """What is evaluated each epoch and written at the end: the moving average of the weights under --ema."""
        return self.ema.module if self.ema is not None else self.model

    def lr_factor(self, step: int) -> float:
        warmup = round(self.config.lr_warmup * self.steps_per_epoch)
        return lr_factor(step, self.total_steps, warmup, self.config.lr_schedule)

    def resume(self) -> None:
        """Restore model, optimizer, scheduler, RNG and history from the latest checkpoint, if any."""
        config, accel = self.config, self.accelerator
        latest = checkpoint.latest(self.ckpt_dir)
        if latest is None:
            accel.print(f"--resume: no checkpoint in {self.ckpt_dir}, starting from scratch")
            return
        state = checkpoint.load(
            latest, self.model, self.optimizer, self.rank, map_location=str(accel.device), ema=self.ema
        )
        ignored = TrainConfig.resumable()
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
        self.resumed_seconds = self.history[-1]["seconds"] if self.history else 0.0  # the card counts every part
        accel.print(f"resumed from {latest} (epoch {self.start_epoch} of {self.total_epochs} done)")

    def run(self) -> dict[str, Any]:
        """Train (resuming first with ``--resume``), then write the model folder.

        Returns:
            The final metrics (on the main process; an empty dict on the others).
        """
        config, accel = self.config, self.accelerator
        if config.resume:
            self.resume()
        elif self.main and checkpoint.latest(self.ckpt_dir) is not None:
            accel.print(f"note: {self.ckpt_dir} holds an earlier run's checkpoint; it will be replaced (use --resume)")
        # DDP across processes; the optimizer needs no wrapper. The model is on accel.device already, and with
        # device_placement left to accelerate it imports torch.distributed.tensor to look for DTensors: ~1 s.
        self.ddp_model = self.prepare_model()
        if config.report_to != "none":
            accel.init_trackers(Path(config.output_dir).resolve().name, config=tracker_config(config))
        if self.main:  # the training curves need matplotlib at the end: its import overlaps the epochs
            import_matplotlib_in_the_background()
        start = time.perf_counter() - self.resumed_seconds
        with flush_denormals():  # Adam's tiny second moments: slow on Intel CPUs as denormals, zeros here
            for epoch in range(self.start_epoch, self.total_epochs):
                epoch_start = time.perf_counter()
                sums = self.train_epoch(epoch)
                train_seconds = time.perf_counter() - epoch_start
                self.end_epoch(epoch, sums, seconds=time.perf_counter() - start, train_seconds=train_seconds)
        self.release_training_images()
        metrics: dict[str, Any] = {}
        if self.main:
            final = self.evaluated_model().eval()
            n_train = self.n_train
            # without an NLL to add (or for a VQ-VAE), the final evaluation would repeat the last epoch's
            test = self.last_test if config.eval_k == 0 or config.model == "vqvae" else None
            metrics = write_model_folder(
                config, final, self.test_images, self.history, time.perf_counter() - start, n_train, self.world,
                self.data, self.test_labels, test=test,
            )  # fmt: skip
        accel.wait_for_everyone()
        accel.end_training()
        return metrics

    def prepare_model(self) -> torch.nn.Module:
        """The model the steps call: wrapped by Accelerate (DDP across processes, autocast around forward)."""
        return self.accelerator.prepare(self.model, device_placement=[False])

    def release_training_images(self) -> None:
        """Free the training split once the epochs are done: the model folder needs only its size and shape.

        A view of one image expanded to the split's shape keeps both, without the ~50 MB of Fashion-MNIST.
        """
        if self.stream is not None:
            return
        images = self.data.train.images
        self.data.train.images = images[:1].expand(images.shape) if len(images) else images
        self.train_images = self.train_images[:0]

    def train_epoch(self, epoch: int, max_steps: int | None = None) -> Tensor:
        """One pass over this process's share of the data (its first ``max_steps`` batches when given).

        Returns:
            The summed (loss, -ELBO, recon, KL).
        """
        config, accel = self.config, self.accelerator
        self.ddp_model.train()
        steps = min(self.steps_per_epoch, max_steps or self.steps_per_epoch)
        sums = torch.zeros(4, device=accel.device, dtype=torch.float64)
        seen = 0
        bar = tqdm(
            self.batches(epoch, steps),
            total=steps,
            desc=self.epoch_label(epoch),
            disable=not (config.progress and self.main),
            unit="batch",
            dynamic_ncols=True,
        )
        for i, (x, y) in enumerate(bar):
            # the (loss, -ELBO, recon, KL) sums; the gradients are in each parameter's .grad
            parts = self.step(x, y, epoch * self.steps_per_epoch + i)
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            sums += parts.double()
            seen += x.shape[0]
            if (i + 1) % config.log_every == 0 or i + 1 == len(bar):
                values = sums.tolist()  # the only host sync: every log_every steps
                if not all(math.isfinite(v) for v in values):
                    raise diverged(values[0], epoch, i, self.ckpt_dir)
                bar.set_postfix(self.postfix(values, seen, epoch))
        return sums

    @property
    def total_epochs(self) -> int:
        """The epochs of the whole run."""
        return self.config.epochs

    def postfix(self, values: list[float], seen: int, epoch: int) -> dict[str, str]:
        """The progress bar's figures from the summed (loss, -ELBO, recon, KL) of ``seen`` images."""
        return {"loss": f"{values[0] / seen:.2f}", "kl": f"{values[3] / seen:.2f}"}

    def epoch_label(self, epoch: int) -> str:
        """The progress bar's label of ``epoch`` (counted from 0)."""
        return f"epoch {epoch + 1}/{self.config.epochs}"

    def step(self, x: Tensor, y: Tensor | None, step: int) -> Tensor:
        """One batch's loss and gradients (uint8 images ``x``, labels ``y``): the (loss, -ELBO, recon, KL) sums."""
        config = self.config
        if config.binarize:
            x = torch.bernoulli(to_unit(x))
        elif self.fused_step is None:
            x = to_unit(x)
        beta = kl_warmup(step, self.warmup_steps, config.beta)
        return self.fused_step(x, beta) if self.fused_step else self.autograd_step(x, y, beta)

    def batches(self, epoch: int, steps: int) -> Iterator[tuple[Tensor, Tensor | None]]:
        """The first ``steps`` batches of this process's share of ``epoch``: uint8 images and (when conditional)
        labels, on the device."""
        config, device = self.config, self.accelerator.device
        conditional = config.conditional
        if self.stream is not None:
            count = min(steps * config.batch_size, self.n_train // self.world)
            for x, y in self.stream.batches(epoch, self.rank, self.world, config.batch_size, count):
                yield x.to(device, non_blocking=True), (y.to(device) if conditional else None)
            return
        order = epoch_order(self.n_train, config.seed, epoch, self.rank, self.world).to(self.train_images.device)
        for idx in order.split(config.batch_size)[:steps]:
            # uint8 (the fused step scales it into a buffer of its own); index_select is faster than x[idx] on a CPU
            x = torch.index_select(self.train_images, 0, idx).to(device, non_blocking=True)
            yield x, (torch.index_select(self.train_labels, 0, idx).to(device) if conditional else None)

    def autograd_step(self, x: Tensor, y: Tensor | None, beta: float) -> Tensor:
        """Loss and gradients through autograd (any model and objective); the (loss, -ELBO, recon, KL) sums."""
        config, accel = self.config, self.accelerator
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with accel.autocast():
            if config.iw_samples > 1:
                out = iwae(self.ddp_model, x, config.iw_samples, labels=y)
            else:
                out = elbo(self.ddp_model, x, beta=beta, free_bits=config.free_bits, labels=y)
        self.optimizer.zero_grad(set_to_none=True)
        accel.backward(out.loss)
        return torch.stack([out.loss.detach(), out.total_sum.detach(), out.recon_sum.detach(), out.kl_sum.detach()])

    def end_epoch(self, epoch: int, sums: Tensor, *, seconds: float, train_seconds: float) -> None:
        """Log train and test figures, then write the epoch's checkpoint.

        ``seconds``: since the run started; ``train_seconds``: this epoch's training steps alone.
        """
        config, accel = self.config, self.accelerator
        sums = accel.reduce(sums, reduction="sum")
        seen = (self.n_train // self.world) * self.world
        stats = {
            "epoch": epoch + 1,
            "train_loss": float(sums[1]) / seen,
            "train_recon": float(sums[2]) / seen,
            "train_kl": float(sums[3]) / seen,
            "beta": kl_warmup((epoch + 1) * self.steps_per_epoch, self.warmup_steps, config.beta),
            "lr": self.scheduler.get_last_lr()[0],
        }
        if self.main:
            test = self.last_test = evaluate(
                self.evaluated_model(), self.test_images, labels=self.test_labels, seed=epoch
            )
            stats |= {
                "test_loss": test["loss"],
                "test_recon": test["recon"],
                "test_kl": test["kl"],
                "active_units": test["active_units"],
                "seconds": round(seconds, 2),
                "train_epoch_seconds": round(train_seconds, 3),
            }
            self.history.append(stats)
            if config.report_to != "none":
                log_epoch(accel, self.evaluated_model(), self.test_images, stats, self.test_labels)
            accel.print(
                f"epoch {epoch + 1}: train loss {stats['train_loss']:.2f} "
                f"(recon {stats['train_recon']:.2f}, KL {stats['train_kl']:.2f}) | "
                f"test loss {test['loss']:.2f} (recon {test['recon']:.2f}, KL {test['kl']:.2f}) | "
                f"active units {test['active_units']}/{config.latent_dim}"
            )
        self.save_checkpoint(epoch)

    def save_checkpoint(self, epoch: int) -> None:
        """Write the checkpoint of ``epoch`` (counted from 0): weights, optimizer, schedule, RNG and history."""
        config, accel = self.config, self.accelerator
        state = {"config": asdict(config), "scheduler": self.scheduler.state_dict(), "history": self.history}
        checkpoint.save(
            self.ckpt_dir, epoch + 1, self.model, self.optimizer, state,
            rank=self.rank, is_main=self.main, barrier=accel.wait_for_everyone, ema=self.ema,
        )  # fmt: skip
