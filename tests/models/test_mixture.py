"""The Gaussian mixture fitted to latent codes: recovers a known mixture, samples where the codes are, checks input."""

from __future__ import annotations

import pytest
import torch

from vae_hub import VariationalAutoencoder
from vae_hub.evaluation.latent_space import fit_code_mixture, gaps
from vae_hub.models.mixture import GaussianMixture

MEANS = torch.tensor([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
SPREADS = (0.3, 0.6, 0.9)


def three_clusters(n: int = 1500, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([m + s * torch.randn(n, 2, generator=g) for m, s in zip(MEANS, SPREADS, strict=True)])


def test_the_fit_recovers_a_known_mixture_and_explains_it_better_than_one_gaussian():
    x = three_clusters()
    mixture = GaussianMixture.fit(x, 3)
    order = mixture.means[:, 0].argsort()  # left, top, right -> the order of MEANS by x: 0, 2, 1
    assert torch.allclose(mixture.means[order], MEANS[[0, 2, 1]], atol=0.1)
    assert torch.allclose(mixture.weights, torch.full((3,), 1 / 3), atol=0.01)
    variances = (mixture.scale_tril @ mixture.scale_tril.transpose(1, 2)).diagonal(dim1=1, dim2=2)[order].mean(1)
    assert torch.allclose(variances, torch.tensor(SPREADS)[[0, 2, 1]] ** 2, rtol=0.15)
    assert mixture.log_prob(x).mean() > GaussianMixture.fit(x, 1).log_prob(x).mean() + 1.0


def test_draws_land_among_the_codes_and_are_repeatable():
    x = three_clusters()
    mixture = GaussianMixture.fit(x, 3, seed=1)
    draws = mixture.sample(3000, generator=torch.Generator().manual_seed(0))
    again = mixture.sample(3000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again) and draws.shape == (3000, 2)
    wide = torch.randn(3000, 2, generator=torch.Generator().manual_seed(0)) * 4  # the codes' overall scale
    assert gaps(x, draws).fraction < 0.1 < gaps(x, wide).fraction


def test_temperature_zero_draws_the_component_means():
    mixture = GaussianMixture.fit(three_clusters(), 3)
    draws = mixture.sample(50, temperature=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.cdist(draws, mixture.means).min(1).values.max() < 1e-5


@pytest.mark.parametrize(
    ("codes", "components", "message"),
    [
        (torch.randn(10), 2, r"codes must be a \(N, latent_dim\) tensor"),
        (torch.full((5, 2), float("nan")), 2, "codes must be finite"),
        (torch.randn(5, 2), 6, r"components must be an integer in \[1, 5\] for 5 codes, got 6"),
        (torch.randn(5, 2), 0, r"components must be an integer in \[1, 5\]"),
        (torch.randn(5, 2), True, "components must be an integer"),
    ],
)
def test_bad_input_is_refused_with_what_was_expected(codes, components, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture.fit(codes, components)


def test_repeated_codes_fit_without_failing():
    mixture = GaussianMixture.fit(torch.ones(20, 3), 4)
    assert torch.isfinite(mixture.log_prob(torch.ones(2, 3))).all()


def test_a_model_samples_from_a_mixture_fitted_to_its_codes():
    torch.manual_seed(0)
    model = VariationalAutoencoder(784, 32, 4, deterministic=True).eval()  # a plain autoencoder: no prior of its own
    images = torch.rand(200, 1, 28, 28)
    mixture = fit_code_mixture(model, images, components=3)
    assert mixture.means.shape == (3, 4)
    samples = model.sample(6, generator=torch.Generator().manual_seed(0), prior=mixture)
    again = model.sample(6, generator=torch.Generator().manual_seed(0), prior=mixture)
    assert samples.shape == (6, 1, 28, 28) and torch.equal(samples, again)
    assert not torch.equal(samples, model.sample(6, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="the mixture has 2-D codes, the model a 4-D latent space"):
        model.sample(2, prior=GaussianMixture.fit(torch.randn(50, 2), 2))
