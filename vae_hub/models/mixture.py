"""A Gaussian mixture over latent codes: a prior fitted after training, to sample where the codes are.

Sampling a VAE draws z from N(0, I) and decodes it; where the aggregate posterior (the codes of the training images)
does not fill the prior, some draws land in gaps between the codes and decode to blends. A plain autoencoder has no
prior at all. Fitting a mixture of Gaussians to the codes and drawing from it instead (Ghosh et al. 2020, "From
Variational to Deterministic Autoencoders"; pythae's GaussianMixtureSampler) puts the draws where the codes are.
Fitted by expectation-maximisation with full covariances, started from k-means++ centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

MAX_COMPONENTS = 256


@dataclass(frozen=True)
class GaussianMixture:
    """Mixture weights (K,), component means (K, L) and the Cholesky factors of their covariances (K, L, L)."""

    weights: Tensor
    means: Tensor
    scale_tril: Tensor

    @property
    def components(self) -> int:
        return self.weights.shape[0]

    def to(self, device: torch.device | str) -> GaussianMixture:
        return GaussianMixture(self.weights.to(device), self.means.to(device), self.scale_tril.to(device))

    @classmethod
    def fit(
        cls,
        codes: Tensor,
        components: int = 10,
        *,
        iterations: int = 100,
        tolerance: float = 1e-3,
        reg: float = 1e-6,
        seed: int = 0,
    ) -> GaussianMixture:
        """Fit a mixture to ``codes`` by expectation-maximisation.

        Args:
            codes: Latent codes (N, L), e.g. the posterior means of training images.
            components: Mixture components K, 1 to min(N, 256).
            iterations: Most EM steps.
            tolerance: Stop when the mean log-likelihood per code improves by less than this (nats), as scikit-learn.
            reg: Added to each covariance's diagonal, so that none is singular.
            seed: The seed of the k-means++ start.

        Returns:
            The fitted ``GaussianMixture`` (float32).

        Raises:
            ValueError: For codes that are not a finite (N, L) tensor, or a component count out of range.
        """
        if not (isinstance(codes, Tensor) and codes.dim() == 2 and codes.shape[0] >= 1 and codes.shape[1] >= 1):
            raise ValueError(f"codes must be a (N, latent_dim) tensor, got {getattr(codes, 'shape', type(codes))}")
        if not torch.isfinite(codes).all():
            raise ValueError("codes must be finite numbers")
        most = min(codes.shape[0], MAX_COMPONENTS)
        if not (isinstance(components, int) and not isinstance(components, bool) and 1 <= components <= most):
            raise ValueError(
                f"components must be an integer in [1, {most}] for {codes.shape[0]} codes, got {components!r}"
            )
        x = codes.detach().double().cpu()
        start = kmeans_plus_plus(x, components, torch.Generator().manual_seed(seed))
        resp = torch.nn.functional.one_hot(torch.cdist(x, start).argmin(1), components).double()
        previous = -math.inf
        for _ in range(iterations):
            weights, means, scale_tril = maximisation(x, resp, reg)
            joint = component_log_probs(x, means, scale_tril) + weights.log()  # (N, K)
            per_code = torch.logsumexp(joint, 1)
            resp = (joint - per_code[:, None]).exp()
            mean = float(per_code.mean())
            if mean - previous < tolerance:
                break
            previous = mean
        return cls(weights.float(), means.float(), scale_tril.float())

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """``n`` codes (n, L): a component drawn by weight, then a point of it, its spread scaled by ``temperature``."""
        which = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype, device=self.means.device)
        return self.means[which] + temperature * (self.scale_tril[which] @ eps[..., None])[..., 0]

    def log_prob(self, z: Tensor) -> Tensor:
        """The mixture's log-density at each code (M,), nats."""
        means, scale_tril, weights = self.means.double(), self.scale_tril.double(), self.weights.double()
        return torch.logsumexp(component_log_probs(z.double(), means, scale_tril) + weights.log(), 1).float()


def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k starting centres among the rows of ``x``, each next one drawn with probability ∝ its squared distance."""
    centres = [x[torch.randint(len(x), (1,), generator=generator)].squeeze(0)]
    nearest = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        if float(nearest.sum()) <= 0:  # fewer distinct codes than components: repeat one
            centres.append(centres[-1])
            continue
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
        centres.append(x[pick].squeeze(0))
        nearest = torch.minimum(nearest, ((x - centres[-1]) ** 2).sum(1))
    return torch.stack(centres)


def maximisation(x: Tensor, resp: Tensor, reg: float) -> tuple[Tensor, Tensor, Tensor]:
    """The M-step: weights, means and Cholesky factors of the covariances from the responsibilities (N, K)."""
    counts = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps
    means = resp.T @ x / counts[:, None]
    diff = x[None] - means[:, None]  # (K, N, L)
    cov = (diff * resp.T[..., None]).transpose(1, 2) @ diff / counts[:, None, None]
    cov = cov + reg * torch.eye(x.shape[1], dtype=x.dtype)
    return counts / counts.sum(), means, torch.linalg.cholesky(cov)


def component_log_probs(x: Tensor, means: Tensor, scale_tril: Tensor) -> Tensor:
    """log N(x_n; mean_k, L_k L_kᵀ) for every code and component, (N, K)."""
    diff = (x[None] - means[:, None]).transpose(1, 2)  # (K, L, N)
    solved = torch.linalg.solve_triangular(scale_tril, diff, upper=False)  # L_k⁻¹ (x - mean_k)
    mahalanobis = (solved**2).sum(1)  # (K, N)
    log_det = 2 * scale_tril.diagonal(dim1=1, dim2=2).log().sum(1)  # (K,)
    return (-0.5 * (x.shape[1] * math.log(2 * math.pi) + log_det[:, None] + mahalanobis)).T
