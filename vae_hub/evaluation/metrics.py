"""Evaluation metrics: the importance-sampled log-likelihood (IWAE bound), KL per dimension, active units."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..models.base import BaseVAE, check_positive_int

Data = Tensor | Iterable[Any]
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016)
EVAL_PRECISIONS = ("fp32", "bf16")  # of the decoder in the importance-sampled NLL
IWAE_IMAGE_SAMPLES = 131_072  # images x importance samples per batch: enough per chunk, bounded memory
LATENT_BLOCK = 2**21  # floats of codes (times the VampPrior's components) handled at once in the NLL: 8 MB


def iwae_batch_size(k: int, batch_size: int = 500) -> int:
    """Images per batch for ``k`` importance samples each: fewer as k grows, so each chunk still holds ~100+."""
    return max(1, min(batch_size, IWAE_IMAGE_SAMPLES // k))


def iter_batches(data: Data, batch_size: int = 500, labels: Tensor | None = None) -> Iterator[tuple[Tensor, Any]]:
    """``(x, y)`` batches from a tensor (N, ...) with optional ``labels`` (N,), or an iterable of tensors or
    ``(x, label)`` pairs; y is None where there are no labels."""
    if isinstance(data, Tensor):
        if labels is None:
            yield from ((x, None) for x in data.split(batch_size))
        else:
            yield from zip(data.split(batch_size), labels.split(batch_size), strict=True)
        return
    for batch in data:
        yield (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)


@torch.no_grad()
def importance_sampled_log_likelihood(
    model: BaseVAE,
    x: Tensor,
    k: int = 1000,
    *,
    max_decoded: int = 1024,
    generator: torch.Generator | None = None,
    labels: Any = None,
    precision: str = "fp32",
) -> Tensor:
    """Estimate log p(x) of each image with k importance samples from q(z|x): the IWAE bound (Burda et al., 2016).

    log p(x) >= log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x): the bound tightens as k grows and equals
    the ELBO for k = 1. The draws are decoded in chunks and combined with a running logsumexp, so k = 5000 needs no
    more memory than k = 50.

    Args:
        model: A vae-hub VAE.
        x: Images (B, C, H, W) or flat, in [0, 1].
        k: Importance samples per image, >= 1 (papers use 1000 to 5000).
        max_decoded: Decoded images per chunk (1024 28x28 logits, 3 MB, stay in a CPU's cache).
        generator: The random generator of the draws.
        labels: A conditional model's classes; its estimate is then log p(x|y).
        precision: ``"fp32"``, or ``"bf16"`` to run the decoder's layers in bfloat16 autocast (native on recent
            CPUs and GPUs); the encoder, the likelihood of the fp32 logits and the logsumexp stay in fp32, so the
            estimate moves by hundredths of a nat.

    Returns:
        log p(x) per image, (B,), in nats; −mean is the usual "NLL".
    """
    check_positive_int("k", k)
    if precision not in EVAL_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(EVAL_PRECISIONS)}, got {precision!r}")
    check_positive_int("max_decoded", max_decoded)
    native = model.check_input(x)
    y = model.check_labels(labels, native.shape[0])  # a conditional model: log p(x|y)
    q = model.encode(native, y)
    target = native.flatten(1)  # (B, D)
    batch = q.mean.shape[0]
    chunk = max(1, min(k, max_decoded // batch))
    total = torch.full((batch,), -math.inf, device=q.mean.device, dtype=q.mean.dtype)
    components = model.prior_components() if model.prior != "standard" else None  # encoded once for all chunks
    # the codes' part of the weights, log p(z) - log q(z|x), for many chunks at once: a few small ops per chunk
    # cost more than their arithmetic (docs/performance.md, "The NLL's codes in blocks")
    per_draw = batch * q.mean.shape[-1] * (components.mean.shape[0] if components is not None else 1)
    block = chunk * max(1, min(-(-k // chunk), LATENT_BLOCK // (per_draw * chunk)))
    done = 0
    while done < k:
        zs = q.sample(min(block, k - done), generator=generator)  # (draws, B, L)
        code_log_w = model.prior_log_prob(zs, components) - q.log_prob(zs)
        for z, log_w in zip(zs.split(chunk), code_log_w.split(chunk), strict=True):
            c = z.shape[0]
            yc = y.repeat(c) if y is not None else None
            with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model._decode_posterior(z.reshape(c * batch, -1), q, yc, generator=generator)
            logits = out.logits.to(z.dtype).reshape(c, batch, -1)
            log_w = log_w - model.reconstruction_nll(logits, target)  # (c, B)
            if out.lower_log_ratio is not None:  # a hierarchical model's lower layers, drawn from their posteriors
                log_w = log_w + out.lower_log_ratio.float().reshape(c, batch)
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        done += zs.shape[0]
    return total - math.log(k)


@dataclass
class PosteriorEstimate:
    """The ELBO of each image from many draws of z ~ q(z|x), and what those draws decode to.

    Attributes:
        recon: −E_q[log p(x|z)] per image, (B,), nats, averaged over the draws.
        kl_per_dim: KL(q(z_d|x) ‖ p(z_d)) per image and dimension, (B, latent_dim) (``BaseVAE.kl_to_prior``).
        samples: The decoder's means at the drawn codes, (S, B, C, H, W).
        mean: The posterior means E[z|x], (B, latent_dim).
        kl_lower: A hierarchical model's lower layers' KL per image, (B,), averaged over the draws; else None.
        kl_exact: Whether the KL is exact (N(0, I), one layer), or averaged over the draws like the reconstruction.
    """

    recon: Tensor  # (B,) -E_q[log p(x|z)] in nats, averaged over the draws
    kl_per_dim: Tensor  # (B, latent_dim) KL(q(z_d|x) || N(0, 1)), exact
    samples: Tensor  # (S, B, C, H, W) decoder means at the drawn z
    mean: Tensor  # (B, latent_dim) E[z|x]
    kl_lower: Tensor | None = None  # (B,) a hierarchical model's lower layers' KL, averaged over the draws

    kl_exact: bool = True  # False where the KL is averaged over the draws (the VampPrior, lower layers)

    @property
    def kl(self) -> Tensor:
        """KL(q(z|x) ‖ p(z)) per image, (B,), nats: the top code's, plus a hierarchical model's lower layers'."""
        top = self.kl_per_dim.sum(-1)
        return top if self.kl_lower is None else top + self.kl_lower

    @property
    def elbo(self) -> Tensor:
        """The ELBO per image, (B,), nats (higher is better)."""
        return -(self.recon + self.kl)


@torch.no_grad()
def posterior_estimate(
    model: BaseVAE, x: Tensor, samples: int = 64, generator: torch.Generator | None = None, labels: Any = None
) -> PosteriorEstimate:
    """Encode ``x`` once, draw ``samples`` codes per image and decode them: the ELBO and the decoded draws.

    Args:
        model: A vae-hub model.
        x: Images (B, C, H, W) or flat, in [0, 1].
        samples: Draws of z per image, >= 1.
        generator: The random generator of the draws.
        labels: A conditional model's classes.

    Returns:
        A ``PosteriorEstimate``.
    """
    check_positive_int("samples", samples)
    native = model.check_input(x)
    y = model.check_labels(labels, native.shape[0])
    q = model.encode(native, y)
    batch = q.mean.shape[0]
    z = q.sample(samples, generator=generator)  # (S, B, L)
    y = y.repeat(samples) if y is not None else None
    out = model._decode_posterior(z.reshape(-1, model.latent_dim), q, y, generator=generator)
    logits = out.logits.reshape(samples, batch, -1)
    recon = model.reconstruction_nll(logits, native.flatten(1)).mean(0)
    images = model.decoded_means(out).reshape(samples, batch, *model.image_shape)
    lower = out.lower_kl.reshape(samples, batch, -1).sum(-1).mean(0) if out.lower_kl is not None else None
    _, kl_per_dim = model.kl_to_prior(q, z)  # (S, B, latent_dim): exact for N(0, I), estimated at each draw else
    exact = lower is None and model.prior == "standard"
    return PosteriorEstimate(recon, kl_per_dim.mean(0), images, q.mode(), lower, exact)


@torch.no_grad()
def posterior_mean_variance(model: BaseVAE, data: Data, batch_size: int = 500, labels: Tensor | None = None) -> Tensor:
    """The variance over the data of each latent dimension's posterior mean, Var_x(E_q[z_d]).

    Args:
        model: A vae-hub model.
        data: Images (N, C, H, W) in [0, 1], or an iterable of batches (images, or ``(images, labels)`` pairs).
        batch_size: Images encoded at once.
        labels: A conditional model's classes (N,), when ``data`` is a tensor.

    Returns:
        (latent_dim,).
    """
    batches = iter_batches(data, batch_size, labels)
    means = torch.cat([model.encode(x, y if model.conditional else None).mode() for x, y in batches])
    return means.var(dim=0, correction=0)


def active_units(
    model: BaseVAE,
    data: Data,
    threshold: float = ACTIVE_UNIT_THRESHOLD,
    batch_size: int = 500,
    labels: Tensor | None = None,
) -> int:
    """The number of active latent units (Burda et al., 2016): dimensions with Var_x(E_q[z_d]) > ``threshold``.

    Few active units is the signature of posterior collapse: the decoder ignores the other dimensions.

    Args:
        model: A vae-hub model.
        data: Images (N, C, H, W) in [0, 1], or an iterable of batches (images, or ``(images, labels)`` pairs).
        threshold: The variance above which a dimension counts as active.
        batch_size: Images encoded at once.
        labels: A conditional model's classes (N,), when ``data`` is a tensor.

    Returns:
        A count in [0, latent_dim].
    """
    return int((posterior_mean_variance(model, data, batch_size, labels) > threshold).sum())


@torch.no_grad()
def kl_per_dimension(model: BaseVAE, data: Data, batch_size: int = 500, labels: Tensor | None = None) -> Tensor:
    """The mean KL(q(z_d|x) ‖ p(z_d)) over the data of each latent dimension d (``BaseVAE.kl_to_prior``).

    Args:
        model: A vae-hub model.
        data: Images (N, C, H, W) in [0, 1], or an iterable of batches (images, or ``(images, labels)`` pairs).
        batch_size: Images encoded at once.
        labels: A conditional model's classes (N,), when ``data`` is a tensor.

    Returns:
        Nats, (latent_dim,).

    Raises:
        ValueError: When ``data`` holds no images.
    """
    total, count = None, 0
    for x, y in iter_batches(data, batch_size, labels):
        q = model.encode(x, y if model.conditional else None)
        z = q.mean if model.prior == "standard" else q.sample()  # the closed form needs no draw; the VampPrior one
        kl = model.kl_to_prior(q, z)[1].sum(0)
        total = kl if total is None else total + kl
        count += x.shape[0]
    if total is None:
        raise ValueError("kl_per_dimension got no data")
    return total / count
