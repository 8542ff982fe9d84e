"""Evaluate a model on a set of images: ELBO and its parts, importance-sampled NLL, KL per dimension, active units;
for a VQ-VAE, its likelihood bound, code length and codebook usage."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..data.image_data import to_unit
from ..models.base import BaseVAE
from ..models.objectives import bernoulli_entropy_sum, elbo
from ..models.vqvae import VQVAE, vq_loss
from .metrics import ACTIVE_UNIT_THRESHOLD, EVAL_PRECISIONS, importance_sampled_log_likelihood, iwae_batch_size


@torch.no_grad()
def evaluate(
    model: BaseVAE | VQVAE,
    images: Tensor,
    *,
    labels: Tensor | None = None,
    k: int = 0,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = False,
    desc: str = "evaluate",
    precision: str = "fp32",
) -> dict[str, Any]:
    """Every test figure of a model at once, as per-image means in nats.

    Args:
        model: A vae-hub model.
        images: Test images (N, C, H, W): floats in [0, 1] or uint8 pixels (scaled batch by batch).
        labels: A conditional model's classes (N,); its NLL is then −log p(x|y).
        k: Importance samples for the NLL; 0 skips it.
        batch_size: Images evaluated at once.
        seed: The seed of the draws of z.
        progress: Show a progress bar.
        desc: The progress bar's label.
        precision: ``"fp32"``, or ``"bf16"`` to decode the NLL's importance samples in bfloat16 (see
            ``importance_sampled_log_likelihood``; a convolutional model runs channels-last).

    Returns:
        A dict: ``loss`` (−ELBO with one sampled z, the canonical example's test loss), ``elbo``, ``recon`` and
        ``kl`` (its parts), ``loss_bits_per_dim``, ``active_units`` (Var_x E_q[z_d] > 0.01), ``latent_dim``,
        ``kl_per_dim``, ``num_images``; with ``k > 0``, ``nll``, ``nll_bits_per_dim``, ``nll_k`` and
        ``nll_precision``; for a Bernoulli likelihood, ``bernoulli_floor`` (the pixels' own binary entropy, which
        no reconstruction term goes below on grey-level data); for a hierarchical model, ``kl_per_layer`` (the top
        code's KL, then each lower latent map's). Bits per dimension are nats / (C·H·W · ln 2). For a VQ-VAE,
        what ``evaluate_vq`` returns (``k``, ``labels`` and ``precision`` do not apply).
    """
    if isinstance(model, VQVAE):
        return evaluate_vq(model, images, batch_size=batch_size, progress=progress, desc=desc)
    if precision not in EVAL_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(EVAL_PRECISIONS)}, got {precision!r}")
    if getattr(model, "deterministic", False):
        k = 0  # a plain autoencoder defines no p(x): its "loss" is the reconstruction term alone
    was_training = model.training
    model.eval()
    nll_model = model
    if precision == "bf16" and model.convolutional:
        nll_model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # oneDNN's fast bf16 layout
    generator = torch.Generator(device=model.device).manual_seed(seed)
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "nll": 0.0, "floor": 0.0}
    kl_per_dim = torch.zeros(model.latent_dim, device=model.device, dtype=torch.float64)
    kl_lower: Tensor | None = None  # a hierarchical model's lower latent groups
    means = []  # posterior means, collected in the same pass for the active-unit count
    if k > 0:
        batch_size = iwae_batch_size(k, batch_size)
    batches = images.split(batch_size)
    label_batches = labels.split(batch_size) if model.conditional and labels is not None else [None] * len(batches)
    for x, y in tqdm(zip(batches, label_batches, strict=True), total=len(batches), desc=desc, disable=not progress,
                     unit="batch", leave=False):  # fmt: skip
        if model.likelihood == "bernoulli":  # -log p(x|z) >= sum_i H(x_i): reached only when the decoder outputs x
            sums["floor"] += bernoulli_entropy_sum(x)
        x, y = x.to(model.device), (y.to(model.device) if y is not None else None)  # a no-op where they are already
        x = to_unit(x)  # uint8 pixels are scaled per batch: a data set in memory stays 4x smaller
        out = elbo(model, x, generator=generator, labels=y)
        sums["loss"] += float(out.total_sum)
        sums["recon"] += float(out.recon_sum)
        sums["kl"] += float(out.kl_sum)
        kl_per_dim += out.kl_per_dim.sum(0).double()
        if out.kl_lower is not None:
            kl_lower = out.kl_lower.sum(0).double() + (kl_lower if kl_lower is not None else 0)
        means.append(out.mu)
        if k > 0:
            log_px = importance_sampled_log_likelihood(
                nll_model, x, k=k, generator=generator, labels=y, precision=precision
            )
            sums["nll"] -= float(log_px.sum())
    model.train(was_training)
    n = images.shape[0]
    variance = torch.cat(means).var(dim=0, correction=0)
    result: dict[str, Any] = {
        "num_images": n,
        "loss": sums["loss"] / n,
        "elbo": -sums["loss"] / n,
        "recon": sums["recon"] / n,
        "kl": sums["kl"] / n,
        "active_units": int((variance > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": model.latent_dim,
        "kl_per_dim": [round(v, 5) for v in (kl_per_dim / n).tolist()],
    }
    if kl_lower is not None:  # KL of each stochastic layer, top first: which layers carry the information
        groups = len(model.lower_shapes)  # type: ignore[attr-defined]
        layers = kl_lower.reshape(groups, -1).sum(-1) / n
        result["kl_per_layer"] = [round(float(kl_per_dim.sum()) / n, 4)] + [round(v, 4) for v in layers.tolist()]
    if model.likelihood == "bernoulli":
        result["bernoulli_floor"] = sums["floor"] / n
    dims = math.prod(model.image_shape)  # bits per dimension: nats per image / (pixels x channels x ln 2)
    result["loss_bits_per_dim"] = result["loss"] / (dims * math.log(2))
    if k > 0:
        result["nll"] = sums["nll"] / n
        result["nll_k"] = k
        result["nll_precision"] = precision
        result["nll_bits_per_dim"] = result["nll"] / (dims * math.log(2))
    return result


@torch.no_grad()
def evaluate_vq(
    model: VQVAE,
    images: Tensor,
    *,
    batch_size: int = 500,
    prior: bool = True,
    progress: bool = False,
    desc: str = "evaluate",
) -> dict[str, Any]:
    """A VQ-VAE's test figures, per-image means in nats.

    Args:
        model: A ``VQVAE``.
        images: Test images (N, C, H, W): floats in [0, 1] or uint8 pixels.
        batch_size: Images evaluated at once.
        prior: Include the code prior's figures (leave out while only the first stage is trained).
        progress: Show a progress bar.
        desc: The progress bar's label.

    Returns:
        A dict: ``recon`` (−log p(x | z_q)), ``commitment``, ``perplexity`` (exp of the codebook usage's entropy),
        ``codes_used``, ``num_codes``, ``num_images``, ``bernoulli_floor``; with ``prior``, ``code_length``
        (−log p(c(x)) under the learned prior), ``nll_bound`` (their sum, an upper bound on −log p(x), not an
        importance-sampled estimate) and ``nll_bound_bits_per_dim``.
    """
    was_training = model.training
    model.eval()
    sums = {"recon": 0.0, "commitment": 0.0, "code_length": 0.0, "floor": 0.0}
    counts = torch.zeros(model.num_codes, dtype=torch.float64)
    batches = images.split(batch_size)
    for x in tqdm(batches, desc=desc, disable=not progress, unit="batch", leave=False):
        sums["floor"] += bernoulli_entropy_sum(x)
        x = to_unit(x.to(model.device))
        parts = vq_loss(model, model.check_input(x))
        sums["recon"] += float(parts.recon_sum)
        sums["commitment"] += float(parts.commitment_sum)
        counts += torch.bincount(parts.indices.flatten().cpu(), minlength=model.num_codes).double()
        if prior:
            sums["code_length"] -= float(model.code_prior.log_prob(parts.indices).sum())
    model.train(was_training)
    n = images.shape[0]
    usage = counts / counts.sum()
    used = usage[usage > 0]
    result: dict[str, Any] = {
        "num_images": n,
        "recon": sums["recon"] / n,
        "commitment": sums["commitment"] / n,
        "perplexity": float(torch.exp(-(used * used.log()).sum())),
        "codes_used": int((counts > 0).sum()),
        "num_codes": model.num_codes,
        "bernoulli_floor": sums["floor"] / n,
    }
    if prior:
        result["code_length"] = sums["code_length"] / n
        result["nll_bound"] = result["recon"] + result["code_length"]
        result["nll_bound_bits_per_dim"] = result["nll_bound"] / (model.input_dim * math.log(2))
    return result


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of what ``evaluate`` returns, as ``vae-hub evaluate`` prints it.

    Args:
        metrics: The dict ``evaluate`` returns.

    Returns:
        The table, one figure per line, then the KL of each latent dimension, largest first.
    """
    labels = {
        "loss": "test loss (-ELBO, nats/image)",
        "recon": "  reconstruction",
        "kl": "  KL",
        "loss_bits_per_dim": "test loss in bits/dim",
        "nll": f"NLL, importance-sampled (k={metrics.get('nll_k')})",
        "nll_bits_per_dim": "NLL in bits/dim",
        "bernoulli_floor": "floor: the images' own binary entropy",
        "active_units": f"active units (of {metrics.get('latent_dim')})",
        "commitment": "commitment ||z_e - z_q||^2",
        "code_length": "code length under the learned prior (nats)",
        "nll_bound": "NLL bound: reconstruction + code length",
        "nll_bound_bits_per_dim": "NLL bound in bits/dim",
        "perplexity": f"codebook perplexity (of {metrics.get('num_codes')} entries)",
        "codes_used": "codebook entries used",
        "num_images": "images",
    }
    rows = [(label, metrics[key], "bits" in key) for key, label in labels.items() if key in metrics]
    width = max(len(label) for label, _, _ in rows)
    lines = [
        f"{label:<{width}}  {value:.4f}" if bits else f"{label:<{width}}  {value:.2f}" if isinstance(value, float)
        else f"{label:<{width}}  {value}"
        for label, value, bits in rows
    ]  # fmt: skip
    if "kl_per_layer" in metrics:  # a hierarchical model: which stochastic layers carry the information
        lines.append("KL per stochastic layer (nats), top first:")
        names = ["top code", *(f"latent map {i}" for i in range(1, len(metrics["kl_per_layer"])))]
        lines += [f"  {name:<13} {v:8.3f}" for name, v in zip(names, metrics["kl_per_layer"], strict=True)]
    if "kl_per_dim" in metrics:  # dimensions by KL, largest first: the collapsed ones sit at ~0
        ranked = sorted(enumerate(metrics["kl_per_dim"]), key=lambda dv: -dv[1])
        lines.append("KL per latent dimension of the top code (nats), largest first:" if "kl_per_layer" in metrics
                     else "KL per latent dimension (nats), largest first:")  # fmt: skip
        lines += [f"  z{d:<3} {v:8.3f}" for d, v in ranked]
    return "\n".join(lines)
