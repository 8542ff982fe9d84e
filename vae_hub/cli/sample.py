"""Sample an image grid from a vae-hub model (a local folder or a Hub repo id).

Examples: vae-hub sample runs/vae --n 64 --temperature 0.8 --seed 0 --out samples.png
          vae-hub sample runs/autoencoder --sampler gmm   # z from a mixture fitted to the training images' codes
With --sampler gmm the training images are read as vae-hub evaluate reads the test images: the data the model
folder says it was trained on, unless --dataset names other data.
"""

from __future__ import annotations

import argparse

import torch

from ..errors import CheckpointError, DataError, DataNotFoundError
from ..evaluation.latent_space import fit_code_mixture
from ..evaluation.plots import save_samples
from ..models.base import require_vae
from ..models.loading import from_pretrained
from .model_data import add_data_options, model_images
from .options import error

SAMPLERS = {
    "prior": "z ~ N(0, T² I), the model's prior",
    "gmm": "z from a Gaussian mixture fitted to the posterior means of training images, where the codes are: "
    "fewer draws between them, and the way to sample a plain autoencoder",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a folder written by save_pretrained, or a Hub repo id (user/name)")
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--temperature", type=float, default=1.0, help="prior scale; below 1 gives cleaner samples")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default="samples.png", help="PNG file to write")
    p.add_argument("--sampler", choices=tuple(SAMPLERS), default="prior",
                   help="; ".join(f"{k}: {v}" for k, v in SAMPLERS.items()))  # fmt: skip
    p.add_argument("--components", type=int, default=10, help="gmm: the mixture's components")
    p.add_argument("--fit-images", type=int, default=10_000, help="gmm: training images whose codes are fitted")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where to run")
    add_data_options(p)


def run(args: argparse.Namespace) -> int:
    if args.fit_images < 1:
        error(f"--fit-images must be >= 1, got {args.fit_images}")
        return 2
    try:
        model = from_pretrained(args.model, map_location=args.device)
        prior = None
        if args.sampler == "gmm":
            model = require_vae(model, "vae-hub sample --sampler gmm")
            images, labels, dataset, note = model_images(args, model, split="train", limit=args.fit_images)
            print(f"fitting {args.components} Gaussians to the codes of {len(images):,} images from {dataset}, {note}")
            prior = fit_code_mixture(model, images, labels, components=args.components, seed=args.seed)
        save_samples(model, args.out, n=args.n, temperature=args.temperature, seed=args.seed, padding=1, prior=prior)
    except (CheckpointError, DataNotFoundError, DataError, ValueError, OSError) as e:
        error(str(e))
        return 2
    print(f"wrote {args.n} samples from {args.model} to {args.out}")
    return 0
