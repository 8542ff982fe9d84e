"""Looking at a latent space: posterior means of a set of images, a 2-D view of them, and how gappy it is.

The textbook claim: a plain autoencoder leaves gaps between its classes' codes, so a random point decodes to
nonsense; the KL term of a VAE pulls the codes onto the prior, so that any prior draw lands near some encoded image.
``gap_fraction`` puts one number on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..models.base import BaseVAE
from ..models.mixture import GaussianMixture

GAP_QUANTILE = 0.95  # a draw is "in a gap" when it is farther from every code than 95% of test codes are


@torch.no_grad()
def posterior_means(model: BaseVAE, images: Tensor, labels: Tensor | None = None, batch_size: int = 1000) -> Tensor:
    """The posterior mean E_q[z|x] of each image: its code on a latent map (a plain autoencoder's code).

    Args:
        model: A vae-hub model.
        images: Images (N, C, H, W) in [0, 1].
        labels: A conditional model's classes (N,).
        batch_size: Images encoded at once.

    Returns:
        (N, latent_dim).
    """
    y = labels if model.conditional else None
    parts = [
        model.encode(x, None if y is None else y[i * batch_size : (i + 1) * batch_size])[0]
        for i, x in enumerate(images.split(batch_size))
    ]
    return torch.cat(parts)


@dataclass(frozen=True)
class Projection:
    """A plane of the latent space: ``to_plane`` gives 2-D coordinates, ``to_latent`` the point of z-space.

    For a 2-D latent space it is the identity; above, the plane through the codes' mean spanned by their two
    principal directions (PCA). Its axes are orthonormal, so the prior N(0, I) looks like N(0, I) on it, centred
    at the projection of the origin.
    """

    center: Tensor  # (L,)
    axes: Tensor  # (2, L), orthonormal rows
    explained: float  # share of the codes' variance on the plane
    kind: str

    def to_plane(self, z: Tensor) -> Tensor:
        """Coordinates on the plane.

        Args:
            z: Codes (..., latent_dim).

        Returns:
            (..., 2).
        """
        return (z - self.center) @ self.axes.T

    def to_latent(self, p: Tensor) -> Tensor:
        """The code at plane coordinates.

        Args:
            p: Coordinates (..., 2).

        Returns:
            (..., latent_dim).
        """
        return self.center + p @ self.axes

    @property
    def origin(self) -> Tensor:
        """Where z = 0 (the prior's mean) lies on the plane."""
        return self.to_plane(torch.zeros_like(self.center))


def projection(codes: Tensor) -> Projection:
    """The plane a latent map is drawn on: the latent space itself for 2-D codes, else their PCA plane.

    Args:
        codes: Codes (N, latent_dim), N >= 2.

    Returns:
        A ``Projection``.
    """
    latent_dim = codes.shape[1]
    if latent_dim == 2:
        return Projection(torch.zeros(2), torch.eye(2), 1.0, "the 2-D latent space itself")
    center = codes.mean(0)
    _, s, v = torch.linalg.svd(codes - center, full_matrices=False)
    explained = float((s[:2] ** 2).sum() / (s**2).sum().clamp_min(1e-12))
    return Projection(center, v[:2].contiguous(), explained, f"PCA of the {latent_dim}-D means")


def nearest_distances(points: Tensor, codes: Tensor, *, exclude_self: bool = False) -> Tensor:
    """Euclidean distance from each point (M, L) to its nearest code (N, L)."""
    d = torch.cdist(points.double(), codes.double())
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    return d.min(1).values.float()


@dataclass(frozen=True)
class Gaps:
    """How far random draws land from the codes: ``fraction`` in a gap, and the typical distances."""

    fraction: float  # share of draws farther from every code than GAP_QUANTILE of codes are from their neighbour
    threshold: float  # that distance
    median_draw: float  # median distance from a draw to its nearest code
    median_code: float  # median distance from a code to its nearest other code

    def as_dict(self) -> dict[str, Any]:
        """The figures for JSON.

        Returns:
            Field name to value, rounded to 4 decimals.
        """
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def gaps(codes: Tensor, draws: Tensor, quantile: float = GAP_QUANTILE) -> Gaps:
    """Measure the gaps of a latent space: where ``draws`` land relative to ``codes`` (encoded images).

    A draw is in a gap when its nearest code is farther than the ``quantile`` of the codes' own nearest-neighbour
    distances: denser sets of codes get a tighter threshold, so the figure does not depend on the codes' scale.

    Args:
        codes: Encoded images (N, latent_dim).
        draws: Points to test (M, latent_dim), e.g. draws from the prior.
        quantile: Of the codes' nearest-neighbour distances, in (0, 1).

    Returns:
        A ``Gaps``: the share of draws in a gap, the threshold and the median distances.
    """
    own = nearest_distances(codes, codes, exclude_self=True)
    threshold = float(torch.quantile(own, quantile))
    to_draws = nearest_distances(draws, codes)
    return Gaps(
        fraction=float((to_draws > threshold).float().mean()),
        threshold=threshold,
        median_draw=float(to_draws.median()),
        median_code=float(own.median()),
    )


def fitted_gaussian_draws(codes: Tensor, eps: Tensor) -> Tensor:
    """Map draws ``eps`` ~ N(0, I) through the Gaussian fitted to ``codes`` (their mean and covariance).

    A plain autoencoder has no prior; this is the fairest stand-in for sampling it.

    Args:
        codes: Codes (N, latent_dim).
        eps: Standard normal draws (M, latent_dim).

    Returns:
        (M, latent_dim).
    """
    mean = codes.mean(0)
    cov = torch.cov(codes.T.double()).reshape(codes.shape[1], codes.shape[1])
    chol = torch.linalg.cholesky(cov + 1e-6 * torch.eye(codes.shape[1], dtype=cov.dtype))
    return (mean.double() + eps.double() @ chol.T).float()


def fit_code_mixture(
    model: BaseVAE, images: Tensor, labels: Tensor | None = None, components: int = 10, seed: int = 0
) -> GaussianMixture:
    """A Gaussian mixture fitted to the posterior means of ``images``: a prior to sample ``model`` from.

    ``model.sample(n, prior=fit_code_mixture(model, train_images))`` draws where the training images' codes are,
    not in the gaps between them; for a plain autoencoder, which has no prior, it is the way to sample.

    Args:
        model: A vae-hub model (a VAE or a plain autoencoder).
        images: Training images (N, C, H, W) in [0, 1].
        labels: A conditional model's classes (N,).
        components: Mixture components.
        seed: The seed of the fit's start.

    Returns:
        The fitted ``GaussianMixture``.
    """
    with torch.inference_mode():
        codes = posterior_means(model, images, labels)
    return GaussianMixture.fit(codes.cpu(), components, seed=seed)
