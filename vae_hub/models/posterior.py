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
    """KL(N(mu, exp(logvar)) || N(0, 1)) per latent dimension, same shape as ``mu``."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def diagonal_normal_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, exp(logvar)), summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


class DiagonalGaussian:
    """q(z|x) for a batch: ``mean`` and ``logvar`` of shape (B, latent_dim).

    ``deterministic=True`` is a plain autoencoder's code: every sample is the mean and the KL term is zero. It
    unpacks as ``mean, logvar = posterior``, the pair ``encode`` returned before it was an object.
    """

    def __init__(self, mean: Tensor, logvar: Tensor, deterministic: bool = False) -> None:
        self.mean, self.logvar, self.deterministic = mean, logvar, deterministic

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        return torch.exp(self.logvar)

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.mean, self.logvar))

    def __getitem__(self, index: int) -> Tensor:
        return (self.mean, self.logvar)[index]

    def __len__(self) -> int:
        return 2

    def float(self) -> DiagonalGaussian:
        """The same distribution in fp32 (itself when it already is): the KL of bf16 heads is summed in fp32."""
        if self.mean.dtype == torch.float32 and self.logvar.dtype == torch.float32:
            return self
        return DiagonalGaussian(self.mean.float(), self.logvar.float(), self.deterministic)

    def sample(self, k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """z = mean + std * eps: (B, latent_dim), or (k, B, latent_dim) with ``k`` draws per image."""
        shape = self.mean.shape if k is None else (k, *self.mean.shape)
        if self.deterministic:
            return self.mean.expand(shape)
        mean = self.mean.expand(shape)
        eps = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + eps * self.std

    def mode(self) -> Tensor:
        """The most likely code, the mean: what ``reconstruct`` and the latent maps use."""
        return self.mean

    def kl_per_dim(self) -> Tensor:
        """KL(q(z_d|x) || N(0, 1)) per image and dimension, (B, latent_dim); zeros for a deterministic code."""
        if self.deterministic:
            return torch.zeros_like(self.mean)
        return gaussian_kl(self.mean, self.logvar)

    def kl(self) -> Tensor:
        """KL(q(z|x) || N(0, I)) per image, (B,), in nats: 1/2 sum_d (mean^2 + var - logvar - 1)."""
        return self.kl_per_dim().sum(-1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) summed over the latent dimensions; ``z`` is (..., B, latent_dim)."""
        return diagonal_normal_log_prob(z, self.mean, self.logvar)
