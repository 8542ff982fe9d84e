"""How much Reconstruct's ELBO moves with its seed: the spread of the reconstruction term over 30 seeds, for 16, 32
and 64 draws of z, on 20 bundled Fashion-MNIST test images and the bundled ConvVAE.

Usage: python benchmarks/elbo_draws_spread.py
"""

import statistics

import torch

from vae_hub import from_pretrained
from vae_hub.data.bundled import bundled_images
from vae_hub.evaluation.metrics import posterior_estimate

model = from_pretrained("space/models/conv-fashion-mnist").eval()
x = bundled_images("fashion-mnist", "test").unit()[:20]
for draws in (16, 32, 64):
    spreads = []
    for i in range(len(x)):
        terms = [
            posterior_estimate(model, x[i : i + 1], draws, generator=torch.Generator().manual_seed(s)).recon[0].item()
            for s in range(30)
        ]
        spreads.append(statistics.pstdev(terms))
    print(f"{draws} draws: std over seeds, median {statistics.median(spreads):.2f} nats, largest {max(spreads):.2f}")
