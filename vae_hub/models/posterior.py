"""The encoder's output as a distribution: q(z|x) = N(mean, diag(exp(logvar))), as diffusers' DiagonalGaussian.

Kingma & Welling (2014): the encoder gives a mean and a log-variance per latent dimension; a sample is
z = mean + sigma * eps with eps ~ N(0, I) (the reparameterization trick: differentiable in mean and logvar), and the
KL divergence to the prior N(0, I) has a closed form.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """The closed-form KL(N(mu, exp(logvar)) ‖ N(0, 1)) of each latent dimension: ½ (mu² + σ² − log σ² − 1).

    Args:
        mu: Means, any shape.
        logvar: Log-variances (natural log), the shape of ``mu``.

    Returns:
        Nats, the shape of ``mu``; sum over the last dimension for the KL of the whole code.
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """The prior's log-density log N(z; 0, I).

    Args:
        z: Codes (..., latent_dim).

    Returns:
        Nats, summed over the last dimension: shape (...).
    """
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def diagonal_normal_terms(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z_d; mu_d, exp(logvar_d)) of each dimension, not summed: the shape ``z``, ``mu`` broadcast to."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)


def diagonal_normal_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, diag(exp(logvar))).

    Args:
        z: Codes (..., latent_dim), broadcasting against ``mu``.
        mu: Means (..., latent_dim).
        logvar: Log-variances (natural log), the shape of ``mu``.

    Returns:
        Nats, summed over the last dimension.
    """
    return diagonal_normal_terms(z, mu, logvar).sum(-1)


def diagonal_normal_log_prob_each(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu_k, diag(exp(logvar_k))) of every code against each of K Gaussians, by two matrix products.

    Expanding Σ_d (z_d − μ_kd)² / σ²_kd as z² · (1/σ²_k) − 2 z · (μ_k/σ²_k) + Σ_d μ²_kd/σ²_kd costs O(K·D) per
    code in a matmul, not a (..., K, D) tensor in memory: what makes a mixture prior's density cheap at k = 1000.

    Args:
        z: Codes (..., latent_dim).
        mu: The K means (K, latent_dim).
        logvar: Their log-variances (K, latent_dim).

    Returns:
        Nats, (..., K).
    """
    z = z.float()
    precision = torch.exp(-logvar.float())  # (K, D)
    scaled_mu = mu.float() * precision
    const = (mu.float() * scaled_mu + logvar.float() + LOG_2PI).sum(-1)  # (K,)
    flat = z.reshape(-1, z.shape[-1])
    quad = flat.pow(2) @ precision.T - 2 * (flat @ scaled_mu.T)  # (N, K)
    return (-0.5 * (quad + const)).reshape(*z.shape[:-1], mu.shape[0])


class DiagonalGaussian:
    """The approximate posterior q(z|x) = N(mean, diag(exp(logvar))) of a batch, as ``encode`` returns it.

    It unpacks as ``mean, logvar = posterior``, the pair ``encode`` returned before it was an object.

    Args:
        mean: Means (B, latent_dim).
        logvar: Log-variances (B, latent_dim), natural log.
        deterministic: A plain autoencoder's code: every sample is the mean and the KL is zero.
        features: A hierarchical model's encoder activations, which its top-down pass reads to infer the lower
            layers (``HierarchicalVAE``); None for a one-layer model.
    """

    def __init__(
        self, mean: Tensor, logvar: Tensor, deterministic: bool = False, features: tuple[Tensor, ...] | None = None
    ) -> None:
        self.mean, self.logvar, self.deterministic, self.features = mean, logvar, deterministic, features

    @property
    def std(self) -> Tensor:
        """The standard deviations exp(logvar / 2), (B, latent_dim)."""
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        """The variances exp(logvar), (B, latent_dim)."""
        return torch.exp(self.logvar)

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.mean, self.logvar))

    def __getitem__(self, index: int) -> Tensor:
        return (self.mean, self.logvar)[index]

    def __len__(self) -> int:
        return 2

    def float(self) -> DiagonalGaussian:
        """The same distribution in fp32, so that a loss from bf16 heads is computed in fp32.

        Returns:
            A ``DiagonalGaussian`` with fp32 tensors (itself when they already are).
        """
        if self.mean.dtype == torch.float32 and self.logvar.dtype == torch.float32:
            return self
        return DiagonalGaussian(self.mean.float(), self.logvar.float(), self.deterministic, self.features)

    def sample(self, k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Draw codes with the reparameterization trick: z = mean + std * eps, eps ~ N(0, I).

        Args:
            k: Draws per image; None for one.
            generator: The random generator of eps.

        Returns:
            Codes (B, latent_dim), or (k, B, latent_dim) with ``k``; differentiable in ``mean`` and ``logvar``.
        """
        shape = self.mean.shape if k is None else (k, *self.mean.shape)
        if self.deterministic:
            return self.mean.expand(shape)
        mean = self.mean.expand(shape)
        eps = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + eps * self.std

    def mode(self) -> Tensor:
        """The most likely code, the mean: what ``reconstruct`` and the latent maps use.

        Returns:
            (B, latent_dim).
        """
        return self.mean

    def kl_per_dim(self) -> Tensor:
        """KL(q(z_d|x) ‖ N(0, 1)) of each image and latent dimension, in closed form.

        Returns:
            Nats, (B, latent_dim); zeros for a deterministic code.
        """
        if self.deterministic:
            return torch.zeros_like(self.mean)
        return gaussian_kl(self.mean, self.logvar)

    def kl(self) -> Tensor:
        """KL(q(z|x) ‖ N(0, I)) of each image: ½ Σ_d (mean² + var − logvar − 1).

        Returns:
            Nats, (B,).
        """
        return self.kl_per_dim().sum(-1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x), summed over the latent dimensions.

        Args:
            z: Codes (..., B, latent_dim), e.g. k draws (k, B, latent_dim).

        Returns:
            Nats, (..., B).
        """
        return diagonal_normal_log_prob(z, self.mean, self.logvar)


def gaussian_kl_between(q_mean: Tensor, q_logvar: Tensor, p_mean: Tensor, p_logvar: Tensor) -> Tensor:
    """The closed-form KL(N(q_mean, exp(q_logvar)) ‖ N(p_mean, exp(p_logvar))) of each dimension.

    ½ ((μ_q − μ_p)² / σ_p² + σ_q² / σ_p² − log(σ_q² / σ_p²) − 1): the KL of a lower layer of a hierarchical VAE to
    its learned prior (NVAE, Vahdat & Kautz 2020, eq. 2).

    Returns:
        Nats, the broadcast shape of the arguments.
    """
    ratio = q_logvar - p_logvar
    return 0.5 * ((q_mean - p_mean).pow(2) * torch.exp(-p_logvar) + ratio.exp() - ratio - 1)
