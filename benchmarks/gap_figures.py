"""The share of draws that land in a gap between the codes: from the model's prior (N(0, I), or the VampPrior), from
one Gaussian fitted to the codes, and from a 10-component mixture fitted to them, for the bundled Fashion-MNIST models.

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
MODELS = (
    "ae-2d-fashion-mnist",
    "mlp-2d-fashion-mnist",
    "vamp-2d-fashion-mnist",
    "mlp-fashion-mnist",
    "conv-fashion-mnist",
)
print(f"{'model':<24} {'latent':>6}  {'its prior':>9}  {'':<9}  {'one Gaussian':>12}  {'mixture of 10':>13}")
for name in MODELS:
    model = from_pretrained(f"space/models/{name}").eval()
    with torch.inference_mode():
        codes = posterior_means(model, train.unit(), train.labels)
        prior = model.prior_sample(DRAWS, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(DRAWS, codes.shape[1], generator=torch.Generator().manual_seed(0))
    mixture = fit_code_mixture(model, train.unit(), components=10)
    mixed = mixture.sample(DRAWS, generator=torch.Generator().manual_seed(0))
    shares = [gaps(codes, draws).fraction for draws in (prior, fitted_gaussian_draws(codes, eps), mixed)]
    which = "VampPrior" if model.prior == "vamp" else "N(0, I)"
    cells = f"{shares[0]:>9.1%}  {which:<9}  {shares[1]:>12.1%}  {shares[2]:>13.1%}"
    print(f"{name:<24} {codes.shape[1]:>6}  {cells}")
