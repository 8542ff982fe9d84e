"""The folder a training run leaves: a Hub model repo with config, weights, card, ``metrics.json`` and pictures."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.image_data import Splits
from ..data.named_sets import DATASETS
from ..evaluation.plots import save_reconstructions, save_samples, save_training_curves
from ..evaluation.summary import evaluate
from ..fileio import atomic_write
from ..hub.publish import publish
from ..models.base import BaseVAE
from ..models.vqvae import VQVAE
from ..precision import nll_precision
from .card import DataFacts, model_card
from .config import TrainConfig


def hyperparameters(config: TrainConfig, model: BaseVAE | VQVAE, n_train: int, world: int) -> dict[str, Any]:
    """The model card's hyperparameter table."""
    if isinstance(model, VQVAE):
        return vq_hyperparameters(config, model, n_train, world)
    blocks = getattr(model, "res_blocks", config.res_blocks) or 0
    depth = f", {blocks} residual block{'s' * (blocks > 1)} per resolution" if blocks else ""
    if config.model == "mlp":
        arch = f"MLP {model.input_dim}-{config.hidden_dim}-{config.latent_dim}"
    elif config.model == "hvae":
        maps = ", ".join(f"{c}x{h}x{w}" for c, h, w in model.lower_shapes)  # type: ignore[attr-defined]
        arch = (
            f"hierarchical VAE, base width {config.base_channels}, hidden {config.hidden_dim}, top latent "
            f"{config.latent_dim}, lower latent maps {maps}{depth}"
        )
        if config.pixel_context:
            arch += f", autoregressive decoder reading {config.pixel_context} pixels up and to each side"
    else:
        widths = f"base width {config.base_channels}, hidden {config.hidden_dim}"
        arch = f"ConvVAE, {widths}, latent {config.latent_dim}{depth}"
    return {
        "architecture": arch,
        "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
        "likelihood": config.likelihood + (" (dynamically binarized data)" if config.binarize else ""),
        "objective": "reconstruction only: a deterministic autoencoder (no KL, not a VAE)"
        if config.autoencoder
        else "ELBO"
        if config.iw_samples == 1
        else f"IWAE bound, {config.iw_samples} importance samples",
        "optimizer": f"Adam, lr {config.lr:g}, {config.lr_schedule} schedule"
        + (f", {config.lr_warmup:g} epochs of warm-up" if config.lr_warmup else ""),
        "batch size": f"{config.batch_size} x {world} process(es)",
        "epochs": config.epochs,
        "beta": config.beta,
        "free bits (nats/dim)": config.free_bits,
        "KL warm-up (epochs)": config.kl_warmup,
        "training images": f"{n_train:,}",
        "seed": config.seed,
        "precision": PRECISION_NOTES.get(config.mixed_precision, config.mixed_precision),
        **({"weights": f"exponential moving average, decay {config.ema:g}"} if config.ema else {}),
        **({"conditional on": f"{model.num_classes} classes"} if model.conditional else {}),
    }


def vq_hyperparameters(config: TrainConfig, model: VQVAE, n_train: int, world: int) -> dict[str, Any]:
    """A VQ-VAE's hyperparameter table: its two stages' settings."""
    blocks = model.res_blocks
    h, w = model.grid
    return {
        "architecture": f"VQ-VAE, base width {config.base_channels}, {blocks} residual block{'s' * (blocks != 1)} "
        f"per resolution, code grid {h}x{w}",
        "codebook": f"{model.num_codes} entries of dimension {config.code_dim}, updated by moving averages "
        f"(decay {model.quantizer.decay:g}), unused entries restarted",
        "code prior": f"causal transformer over the {h * w} codes of a grid, width "
        f"{model.code_prior.embed.embedding_dim}, {len(model.code_prior.blocks.layers)} layers",
        "parameters": f"{sum(p.numel() for p in model.parameters()):,}",
        "likelihood": config.likelihood + (" (dynamically binarized data)" if config.binarize else ""),
        "objective": f"stage 1: reconstruction + {config.commitment:g} x commitment (straight-through gradients); "
        "stage 2: the code grids' negative log-likelihood under the prior",
        "optimizer": f"Adam, lr {config.lr:g}, {config.lr_schedule} schedule per stage"
        + (f", {config.lr_warmup:g} epochs of warm-up" if config.lr_warmup else ""),
        "batch size": f"{config.batch_size} x {world} process(es)",
        "epochs": f"{config.epochs} (autoencoder) + {config.prior_epochs} (prior)",
        "training images": f"{n_train:,}",
        "seed": config.seed,
        "precision": PRECISION_NOTES.get(config.mixed_precision, config.mixed_precision),
    }


PRECISION_NOTES = {
    "no": "fp32 throughout",
    "bf16": "bf16 autocast: matmuls and convolutions in bfloat16; weights, loss, gradients' sums and Adam in fp32",
    "fp16": "fp16 autocast with loss scaling; weights and Adam in fp32",
}


def duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def hardware(model: BaseVAE | VQVAE) -> str:
    """What the model was trained on, for the card: the GPU's name, else the CPU's, its cores and torch's threads."""
    if model.device.type == "cuda":
        return torch.cuda.get_device_name(model.device)
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} logical CPUs, {torch.get_num_threads()} threads), PyTorch {torch.__version__}"


def data_facts(data: Splits) -> DataFacts:
    """The card's data lines: the named data set's, or your images' (their source, number, size and test split)."""
    if data.name in DATASETS and data.hub_id == DATASETS[data.name].hub_id:
        return DataFacts.named(data.name)
    c, h, w = data.image_shape
    n = len(data.train) + len(data.test)
    display = data.hub_id or f"{data.display_name} ({n:,} images)"
    classes = f", {len(data.class_names)} classes" if data.class_names else ""
    note = (
        f"{display}: {n:,} images at {c}x{h}x{w}{classes}; {len(data.train):,} to train on; test images: "
        f"{data.split_note}." + (f" Left out: {data.skipped}." if data.skipped else "")
    )
    return DataFacts(data.name, display, data.hub_id, note)


def write_model_folder(
    config: TrainConfig,
    model: BaseVAE | VQVAE,
    test_images: Tensor,
    history: list[dict[str, Any]],
    train_seconds: float,
    n_train: int,
    world: int,
    data: Splits,
    test_labels: Tensor | None = None,
    test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate (unless ``test`` is this model's evaluation already), then write ``config.output_dir`` as a Hub
    model repo (and push it, if asked); returns the metrics."""
    out_dir = Path(config.output_dir)
    if test is None:
        test = evaluate(
            model, test_images, labels=test_labels, k=config.eval_k, seed=config.seed, progress=config.progress,
            desc="final eval", precision=nll_precision(config.eval_precision, model.device),
        )  # fmt: skip
    metrics = {
        "dataset": config.dataset,
        "split": "test",
        "data": {
            "name": data.name,
            "hub_id": data.hub_id,
            "test_split": data.split_note,
            "train_images": len(data.train),
            "test_images": len(data.test),
            "image_shape": list(data.image_shape),
            "class_names": data.class_names,
        },  # fmt: skip
        "test": test,
        "history": history,
        "train_seconds": round(train_seconds, 2),
        "hardware": hardware(model),
        "data_spec": config.data.to_json(),  # what vae-hub evaluate rebuilds the test split from
        "config": {k: v for k, v in asdict(config).items() if k not in ("progress", "resume")},
    }
    model.save_pretrained(out_dir)  # config.json + model.safetensors (README.md is written below)
    atomic_write(out_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    save_samples(model, out_dir / "samples.png", seed=config.seed)
    save_reconstructions(model, test_images, out_dir / "reconstructions.png", labels=test_labels)
    if history:
        save_training_curves(history, out_dir / "training_curves.png")
    limitations = list(config.extra_limitations)
    full = data.train_size
    if n_train < full:
        limitations.insert(0, f"Trained on {n_train:,} images, not the full {full:,}-image training split.")
    epochs = config.epochs + (config.prior_epochs if isinstance(model, VQVAE) else 0)
    card = model_card(
        model,
        test,
        data=data_facts(data),
        hyperparameters=hyperparameters(config, model, n_train, world),
        repo_id=config.push_to_hub,
        model_name=config.model_name,
        dataset_note=config.data_note,
        extra_limitations=limitations,
        has_curves=bool(history),
        trained_on=f"{duration(train_seconds)} ({epochs} epoch{'s' * (epochs > 1)}, test passes "
        f"included) on {hardware(model)}",
        iw_samples=config.iw_samples,
    )
    atomic_write(out_dir / "README.md", lambda p: card.save(p))
    print(f"wrote {out_dir}: config.json, model.safetensors, README.md, metrics.json, PNGs")
    if config.push_to_hub:
        url = publish(out_dir, config.push_to_hub, private=config.private, commit_message="Upload trained VAE")
        print(f"pushed to {url}")
    return metrics
