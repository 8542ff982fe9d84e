"""The share of draws that land in a gap between the codes: from N(0, I), from one Gaussian fitted to the codes,
and from a 10-component mixture fitted to them, for the bundled Fashion-MNIST models.

Usage: python benchmarks/gap_figures.py

The codes are the posterior means of the 4,000 bundled Fashion-MNIST training images; a draw is in a gap when it is
farther from every code than 95% of the codes are from their nearest neighbour (``vae_hub.evaluation.latent_space
.gaps``); 2,000 draws each, seed 0. The lab's Autoencoder vs VAE tab measures the first two the same way.
"""

import torch

from vae_hub import from_pretrained
from vae_hub.data.bundled import bundled_images
from vae_hub.evaluation.latent_space import fit_code_mixture, fitted_gaussian_draws, gaps, posterior_means

DRAWS = 2000
train = bundled_images("fashion-mnist", "train")
print(f"{'model':<24} {'latent':>6}  {'N(0, I)':>8}  {'one Gaussian':>12}  {'mixture of 10':>13}")
for name in ("ae-2d-fashion-mnist", "mlp-2d-fashion-mnist", "mlp-fashion-mnist", "conv-fashion-mnist"):
    model = from_pretrained(f"space/models/{name}").eval()
    with torch.inference_mode():
        codes = posterior_means(model, train.unit(), train.labels)
    eps = torch.randn(DRAWS, codes.shape[1], generator=torch.Generator().manual_seed(0))
    mixture = fit_code_mixture(model, train.unit(), components=10)
    mixed = mixture.sample(DRAWS, generator=torch.Generator().manual_seed(0))
    shares = [gaps(codes, draws).fraction for draws in (eps, fitted_gaussian_draws(codes, eps), mixed)]
    cells = "  ".join(f"{s:>{w}.1%}" for s, w in zip(shares, (8, 12, 13), strict=True))
    print(f"{name:<24} {codes.shape[1]:>6}  {cells}")
