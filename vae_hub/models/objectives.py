"""The ELBO and its parts, written as in Kingma & Welling (2014).

ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)), with q = N(mu, sigma^2) and p = N(0, I).
Everything here works in nats; a *loss* is a negative ELBO (to minimise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .posterior import LOG_2PI


def vae_loss_fn(recon_x: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """The classic PyTorch example's loss: summed binary cross-entropy plus the closed-form KL to N(0, I).

    Args:
        recon_x: The decoder's means in [0, 1], (B, D) or the shape of ``x``.
        x: The images in [0, 1].
        mu: Posterior means (B, latent_dim).
        logvar: Posterior log-variances (B, latent_dim).

    Returns:
        A scalar: the batch's −ELBO in nats (summed over images, not averaged).
    """
    recon_loss = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kl_loss = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return recon_loss + kl_loss


PRODUCT_TERMS = 120  # sigmoid(|l|) >= 1/2: a product of 120 is >= 2^-120, above fp32's smallest normal 2^-126


def softplus(logits: Tensor) -> Tensor:
    """log(1 + e^l) as max(l, 0) - log sigmoid(|l|), elementwise.

    The same function as ``F.softplus``, 6x faster on a CPU: torch computes log1p without SIMD, while sigmoid and log
    are vectorised. Where sigmoid(|l|) rounds to 1 the term it drops is below 1e-7.
    """
    return logits.relu() - torch.sigmoid(logits.abs()).log()


def softplus_sum(logits: Tensor, dim: int | None = None, out: Tensor | None = None) -> Tensor:
    """``softplus(logits).sum(dim)`` (all elements when ``dim`` is None, else the last dimension) with one temporary
    (``out``), no gradient.

    Uses max(l, 0) = (l + |l|) / 2, so the sums of l and |l| replace a third pass, and takes the logs of sigmoid(|l|)
    in products (``sum_of_logs``).
    """
    a = torch.abs(logits, out=out)
    abs_sum = a.sum() if dim is None else a.sum(dim)
    log_sigmoid_sum = sum_of_logs(torch.sigmoid(a, out=a), dim)
    l_sum = logits.sum() if dim is None else logits.sum(dim)
    return 0.5 * (l_sum + abs_sum) - log_sigmoid_sum


def sum_of_logs(p: Tensor, dim: int | None = None) -> Tensor:
    """``p.log().sum(dim)`` for p in [1/2, 1] (all elements when ``dim`` is None, else the last dimension), as the
    logs of products of up to ``PRODUCT_TERMS`` elements.

    Such products stay in fp32's normal range, so one log per group replaces one per element: on the NLL's logits
    the sigmoid and the logs take half the time (docs/performance.md, "The NLL's logs in products").
    """
    if dim is not None and dim not in (-1, p.dim() - 1):
        raise ValueError(f"sum_of_logs reduces all elements or the last dimension, got dim={dim}")
    n = p.numel() if dim is None else p.shape[-1]
    group = max(g for g in range(1, PRODUCT_TERMS + 1) if n % g == 0)
    grouped = p.reshape(-1, group) if dim is None else p.reshape(*p.shape[:-1], n // group, group)
    logs = grouped.prod(-1).log_()
    return logs.sum() if dim is None else logs.sum(-1)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x|z) of a Bernoulli decoder with pixel probabilities sigmoid(logits): the binary cross-entropy.

    Computed from the logits as Σ_d softplus(l_d) − x_d l_d, exact where the sigmoid saturates. Without autograd both
    sums share one temporary (a product and a sum, not a batched matrix-vector product: 0.6 ms less per chunk of the
    NLL, docs/performance.md); bf16 logits are converted to fp32.

    Args:
        logits: Decoder logits (..., D).
        x: Pixels (..., D) in [0, 1], broadcasting against ``logits`` (k samples of a batch: logits (k, B, D),
            x (B, D)).

    Returns:
        Nats, summed over the last dimension: shape (...).
    """
    if torch.is_grad_enabled() and logits.requires_grad:
        return (softplus(logits) - logits * x).sum(-1)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    shape = torch.broadcast_tensors(logits, x)[0].shape  # views; torch.broadcast_shapes imports sympy (0.3-0.5 s)
    buffer = torch.empty(shape, dtype=logits.dtype, device=logits.device)
    nll = softplus_sum(logits, -1, out=buffer if shape == logits.shape else None)
    return nll - torch.mul(logits, x.to(logits.dtype), out=buffer).sum(-1)


def bernoulli_entropy_sum(images: Tensor) -> float:
    """The floor of a Bernoulli likelihood on grey-level pixels: Σ_i H(x_i), H(p) = −p ln p − (1 − p) ln(1 − p).

    No Bernoulli decoder's −log p(x|z) goes below it. uint8 pixels take 256 values, so their sum is a histogram
    times a table of 256 entropies.

    Args:
        images: Pixels as uint8 (0..255) or floats in [0, 1], any shape.

    Returns:
        Nats, summed over every pixel.
    """
    if images.dtype == torch.uint8:
        p = torch.arange(256, dtype=torch.float64, device=images.device) / 255
        table = torch.special.entr(p) + torch.special.entr(1 - p)
        return float(torch.bincount(images.flatten(), minlength=256).double() @ table)
    p = images.float()
    return float((torch.special.entr(p) + torch.special.entr(1 - p)).sum(dtype=torch.float64))


def gaussian_nll(mean: Tensor, x: Tensor, log_std: Tensor) -> Tensor:
    """−log p(x|z) of a Gaussian decoder N(mean, exp(log_std)²).

    Args:
        mean: The decoder's means (..., D).
        x: Pixels (..., D) in [0, 1].
        log_std: The decoder's log standard deviation (a scalar tensor, or broadcasting).

    Returns:
        Nats, summed over the last dimension: shape (...).
    """
    sq = (x - mean).pow(2) * torch.exp(-2 * log_std)
    return 0.5 * (sq + LOG_2PI + 2 * log_std).sum(-1)


@dataclass(frozen=True)
class ELBOOutput:
    """The parts of the ELBO for one batch, in nats; per-image tensors have shape (B,).

    Attributes:
        loss: What training minimises: ``recon.sum() + beta * KL term`` (with free bits, if any); for ``iwae``,
            −Σ of the bound.
        total: The negative ELBO per image, ``recon + kl``, unaffected by beta and free bits.
        recon: The reconstruction term −log p(x|z) per image.
        kl: KL(q(z|x) ‖ p(z)) per image.
        kl_per_dim: KL per image and latent dimension, (B, latent_dim); for the VampPrior, each dimension's
            estimate against the prior's marginal (``BaseVAE.kl_to_prior``); a hierarchical model's top code's.
        logits: The decoder's output before its sigmoid.
        mu: Posterior means (B, latent_dim).
        logvar: Posterior log-variances (B, latent_dim).
        iw_bound: The importance-weighted bound per image when ``iwae`` made it, else None.
        kl_lower: A hierarchical model's KL of each lower latent group, (B, G); ``kl`` includes it. Else None.
    """

    loss: Tensor
    total: Tensor
    recon: Tensor
    kl: Tensor
    kl_per_dim: Tensor
    logits: Tensor
    mu: Tensor
    logvar: Tensor
    iw_bound: Tensor | None = None
    kl_lower: Tensor | None = None

    @property
    def recon_x(self) -> Tensor:
        """The reconstruction: the decoder's pixel means in [0, 1]."""
        return torch.sigmoid(self.logits)

    @property
    def elbo(self) -> Tensor:
        """The ELBO per sample (nats, higher is better)."""
        return -self.total

    @property
    def total_sum(self) -> Tensor:
        """The batch's negative ELBO, summed over images (a scalar)."""
        return self.total.sum()

    @property
    def recon_sum(self) -> Tensor:
        """The reconstruction term summed over images (a scalar)."""
        return self.recon.sum()

    @property
    def kl_sum(self) -> Tensor:
        """The KL term summed over images (a scalar)."""
        return self.kl.sum()


def elbo(
    model: nn.Module,
    x: Tensor,
    *,
    beta: float = 1.0,
    free_bits: float = 0.0,
    generator: torch.Generator | None = None,
    labels: Tensor | None = None,
) -> ELBOOutput:
    """The one-sample ELBO of a model on a batch, with its two terms, computed in fp32.

    The KL term is the closed form for N(0, I), the one-draw estimate log q(z|x) − log p(z) for the VampPrior, and
    for a hierarchical model adds each lower layer's closed-form KL to its learned prior.

    Args:
        model: A vae-hub model, or a DDP wrapper of one.
        x: Images (B, C, H, W) or flat, in [0, 1].
        beta: The KL weight (a β-VAE), >= 0; it changes ``loss``, not ``total``.
        free_bits: A floor on the batch-mean KL of each latent dimension, in nats (Kingma et al., 2016): below it
            no gradient pushes a dimension onto the prior, against posterior collapse. A hierarchical model's lower
            layers get the floor per latent group (one channel of a latent map).
        generator: The random generator of the draw of z.
        labels: A conditional model's classes (B,).

    Returns:
        An ``ELBOOutput``. A deterministic autoencoder has no KL term (z = mu): its loss is the reconstruction term.

    Raises:
        ValueError: For a negative or non-finite ``beta`` or ``free_bits``.
    """
    if beta < 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}")
    if free_bits < 0 or not math.isfinite(free_bits):
        raise ValueError(f"free_bits must be a finite number >= 0 (nats per latent dimension), got {free_bits}")
    out = model(x, generator=generator, labels=labels)  # through any wrapper (DDP)
    core = getattr(model, "module", model)
    posterior = out.posterior.float()  # under bf16 autocast the heads are bf16: the loss is computed in fp32
    logits, mu, logvar = out.logits.float(), posterior.mean, posterior.logvar
    recon = core.reconstruction_nll(logits.flatten(1), x.flatten(1).to(logits))
    kl, kl_per_dim = core.kl_to_prior(posterior, out.z)  # closed form for N(0, I), estimated at z for the VampPrior
    if free_bits > 0 and core.prior != "standard":
        raise ValueError("free_bits floors a closed-form KL per dimension: it needs the N(0, I) prior")
    kl_groups = kl_per_dim
    if out.lower_kl is not None:  # a hierarchical model: its lower layers' KL, one column per latent group
        kl_lower = out.lower_kl.float()
        kl = kl + kl_lower.sum(-1)
        kl_groups = torch.cat([kl_per_dim, kl_lower], dim=-1)
    kl_term = torch.clamp(kl_groups.mean(0), min=free_bits).sum() * x.shape[0] if free_bits > 0 else kl.sum()
    loss = recon.sum() + beta * kl_term
    lower = out.lower_kl.float() if out.lower_kl is not None else None
    return ELBOOutput(loss, recon + kl, recon, kl, kl_per_dim, logits, mu, logvar, kl_lower=lower)


def iwae(
    model: nn.Module, x: Tensor, k: int, *, generator: torch.Generator | None = None, labels: Tensor | None = None
) -> ELBOOutput:
    """The importance-weighted bound (IWAE, Burda et al., 2016), with k samples per image.

    log p(x) >= L_k(x) = E[log (1/k) Σ_i w_i], w_i = p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x). L_1 is the ELBO, and
    L_k tightens as k grows.

    Args:
        model: A vae-hub VAE (not a deterministic autoencoder), or a DDP wrapper of one.
        x: Images (B, C, H, W) or flat, in [0, 1].
        k: Importance samples per image, >= 1.
        generator: The random generator of the draws.
        labels: A conditional model's classes (B,).

    Returns:
        An ``ELBOOutput`` whose ``loss`` is −Σ L_k (what IWAE training minimises; there is no KL weight) and
        ``iw_bound`` the bound per image; ``total``, ``recon`` and ``kl`` are the ELBO's parts on the first sample.
    """
    core = getattr(model, "module", model)
    if getattr(core, "deterministic", False):
        raise ValueError("the IWAE bound needs a VAE: a deterministic autoencoder has no q(z|x) to sample from")
    out = model(x, generator=generator, samples=k, labels=labels)
    q, z, logits = out.posterior.float(), out.z.float(), out.logits.float()  # the bound in fp32 under autocast
    mu, logvar = q.mean, q.logvar
    recon = core.reconstruction_nll(logits.flatten(2), x.flatten(1).to(logits))  # (k, B): -log p(x|z_i)
    log_w = -recon + core.prior_log_prob(z) - q.log_prob(z)  # (k, B)
    if out.lower_log_ratio is not None:  # a hierarchical model: log p(z_lower | z_1) - log q(z_lower | x, z_1)
        log_w = log_w + out.lower_log_ratio.float()
    bound = torch.logsumexp(log_w, dim=0) - math.log(k)  # (B,)
    kl, kl_per_dim = core.kl_to_prior(q, z[0])
    lower = out.lower_kl[0].float() if out.lower_kl is not None else None
    if lower is not None:
        kl = kl + lower.sum(-1)
    return ELBOOutput(-bound.sum(), recon[0] + kl, recon[0], kl, kl_per_dim, logits[0], mu, logvar, bound, lower)


def kl_warmup(step: int, warmup_steps: int, beta: float = 1.0) -> float:
    """The KL weight of a linear warm-up from 0 to ``beta`` (Bowman et al., 2016).

    Args:
        step: The training step, from 0.
        warmup_steps: Steps of the ramp, >= 0 (0: ``beta`` from the start).
        beta: The weight at the end of the ramp.

    Returns:
        ``beta * min(1, step / warmup_steps)``.
    """
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if warmup_steps == 0:
        return beta
    return beta * min(1.0, max(step, 0) / warmup_steps)
