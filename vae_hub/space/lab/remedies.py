"""The lab's Remedies tab: the models the field uses where the textbook VAE falls short, side by side.

The same test images reconstructed, and new images drawn, by the textbook VAE, a hierarchical VAE (with independent
pixels, then with an autoregressive decoder) and a VQ-VAE;
their likelihoods (from each model's ``metrics.json``) and the sharpness of their reconstructions; and the share of
prior draws that land in a gap with the standard prior, the VampPrior and a mixture fitted to the codes.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...data.bundled import bundled_images
from ...errors import CheckpointError, ModelLoadError
from ...evaluation.image_quality import laplacian_variance
from ...images import image_grid
from ...models.loading import from_pretrained
from ...models.vqvae import VQVAE
from ..endpoints import MAX_SEED, Features, seeded
from ..inputs import as_int, user_errors
from ..model_store import read_json
from .features import GAP_DRAWS, MIXTURE_COMPONENTS, RECON_IMAGES, gap_figures

SHARPNESS_IMAGES = 500  # bundled test images behind each model's sharpness figure
ROLES = {  # lab.json's "remedies" keys, in the order shown, and what each row is called
    "textbook": "Textbook VAE (one Gaussian code, N(0, I) prior)",
    "hierarchical": "Hierarchical VAE (a top code and a latent map per resolution)",
    "autoregressive": "Hierarchical VAE with an autoregressive decoder (each pixel reads those decoded before it)",
    "vq": "VQ-VAE (a grid of codebook entries and a learned prior over grids)",
}

EXPLANATION = """\
**What each remedy addresses.**
*Blur* comes from one Gaussian code having to summarise the whole image, with a per-pixel likelihood averaging what
it cannot pin down. The **hierarchical VAE** adds latent maps at 7x7 and 14x14 below its top code, inferred
top-down, so local detail has somewhere to live: its likelihood beats the textbook VAE's. An **autoregressive
decoder** attacks the independence of the pixels itself: each pixel is predicted from the pixels already decoded
above it and to its left, so edges and texture need not be averaged, and the likelihood is the best here by far.
Its price is the one the field knows (Chen et al. 2017, the "lossy autoencoder"): a decoder that models local
detail on its own leaves less for the codes to carry (a far smaller KL), so its reconstructions keep each garment's
kind and outline but not its shade or prints. The **VQ-VAE** drops the Gaussian code for a 7x7 grid of discrete entries,
with no noise and no KL pulling codes towards an average, so its reconstructions are the sharpest; its likelihood
is an upper bound (reconstruction + the prior's code length), not an importance-sampled estimate. *Holes in the
prior* (draws that land where no image is encoded, and decode to blends) come from N(0, I) being simpler than the
codes' real spread: the **VampPrior** learns the prior as a mixture of the posteriors of learned pseudo-images, and
a **mixture fitted to the codes** after training (`vae-hub sample --sampler gmm`) does the same for any model, the
plain autoencoder included. *Posterior collapse* (codes the decoder ignores) has its own tab: free bits and KL
warm-up, which the hierarchical VAEs are trained with, keep each of their layers from collapsing onto its prior.
"""


@dataclass(frozen=True)
class RemedyModels:
    """``lab.json``'s ``"remedies"``: each role's (name, folder or repo id), and the VampPrior twin of the lab's VAE."""

    shown: dict[str, tuple[str, str | Path]]  # role in ROLES -> model
    vamp: tuple[str, str | Path]

    @staticmethod
    def roles() -> tuple[str, ...]:
        """The keys lab.json's "remedies" needs: each role, then "vamp"."""
        return (*ROLES, "vamp")

    def sources(self) -> dict[str, str | Path]:
        return dict([*self.shown.values(), self.vamp])


@dataclass
class Shown:
    """A model of the comparison, as the tab uses it."""

    name: str
    model: Any  # a BaseVAE or a VQVAE
    metrics: dict[str, Any]
    sharpness: float | None = None


class Remedies:
    """The Remedies tab's feature over the page's models and the lab's twins (``autoencoder`` and ``vae``)."""

    def __init__(self, features: Features, models: RemedyModels, autoencoder: str, vae: str) -> None:
        self.features, self.models = features, models
        self.autoencoder, self.vae = autoencoder, vae
        self._vq: dict[str, Shown] = {}  # the VQ-VAEs: the page's model store serves VAEs only
        self._lock = threading.Lock()
        self._gap_table: str | None = None

    def shown(self, role: str) -> Shown:
        """The model of ``role``, loaded once (its sharpness is measured at first use)."""
        name, source = self.models.shown[role]
        if role != "vq":
            loaded = self.features.model(name)
            return loaded.extras.setdefault("remedy", Shown(name, loaded.model, loaded.metrics))
        with self._lock:  # one load, whoever asks first
            if name not in self._vq:
                store = self.features.store
                try:
                    model = from_pretrained(source, max_bytes=store.max_model_bytes)
                except CheckpointError as e:
                    raise ModelLoadError(f"could not load {name}: {str(e).replace(str(source), name)}") from None
                if not isinstance(model, VQVAE):
                    raise ModelLoadError(f"lab.json names {name} as the VQ-VAE, but it is a {type(model).__name__}")
                model.eval().requires_grad_(False).to(memory_format=torch.channels_last)
                self._vq[name] = Shown(name, model, read_json(source, "metrics.json"))
            return self._vq[name]

    def sharpness(self, shown: Shown) -> float:
        """The mean variance of the Laplacian of its reconstructions of SHARPNESS_IMAGES test images (once)."""
        if shown.sharpness is None:
            x = bundled_images("fashion-mnist", "test").unit()[:SHARPNESS_IMAGES]
            shown.sharpness = float(laplacian_variance(shown.model.reconstruct(x)).mean())
        return shown.sharpness

    def gap_table(self) -> str:
        """The share of draws in a gap for each way of drawing codes (measured once: seed 0, fixed draws)."""
        if self._gap_table is not None:
            return self._gap_table
        rows = []
        for name, kind in ((self.autoencoder, "plain autoencoder"), (self.vae, "VAE")):
            prior, _, mixed, _ = gap_figures(self.features.model(name))
            rows.append(f"| {kind} ({name}) | {prior.fraction:.1%} (N(0, I)) | {mixed.fraction:.1%} |")
        vamp_name = self.models.vamp[0]
        prior, _, mixed, _ = gap_figures(self.features.model(vamp_name))
        rows.append(f"| VAE with the VampPrior ({vamp_name}) | {prior.fraction:.1%} (its VampPrior) | "
                    f"{mixed.fraction:.1%} |")  # fmt: skip
        self._gap_table = (
            "| 2-D latent model | its prior's draws in a gap | draws from a mixture of "
            f"{MIXTURE_COMPONENTS} Gaussians fitted to its codes, in a gap |\n|---|---|---|\n" + "\n".join(rows)
            + f"\n\nA draw is *in a gap* when it is farther from every encoded training image (4,000) than 95% of "
            f"those codes are from their nearest neighbour; {GAP_DRAWS:,} draws each. The same network and training "
            "throughout (784-400-2 MLP, Fashion-MNIST); the autoencoder has no prior, so N(0, I) stands in for one."
        )  # fmt: skip
        return self._gap_table

    def likelihood_row(self, role: str, shown: Shown) -> str:
        test = shown.metrics.get("test", {})
        if "nll_bound" in test:
            nll, bits = f"≤ {test['nll_bound']:.2f} (bound)", f"≤ {test['nll_bound_bits_per_dim']:.4f}"
        elif "nll" in test:
            per_dim = test.get("nll_bits_per_dim", test["nll"] / (shown.model.input_dim * math.log(2)))  # older files
            nll, bits = f"{test['nll']:.2f} (k = {test.get('nll_k')})", f"{per_dim:.4f}"
        else:
            nll = bits = "not measured"
        return f"| {ROLES[role]} | {nll} | {bits} | {self.sharpness(shown):.4f} |"

    @user_errors
    def remedies(self, seed: float = 0) -> tuple[Any, ...]:
        """The textbook VAE, the two hierarchical VAEs and the VQ-VAE side by side, then the priors' gap figures.

        Args:
            seed: random seed of the samples, 0 to 2^31 - 1.

        Returns:
            For each model (textbook, hierarchical, autoregressive, VQ-VAE): the same test images (top) and its
            reconstructions
            (PNG), then new images it draws (PNG); then a Markdown of the likelihood and sharpness table, the gap
            table and what each remedy addresses.
        """
        seed = as_int(seed, "seed", 0, MAX_SEED)
        x = bundled_images("fashion-mnist", "test").unit()[:RECON_IMAGES]
        outputs: list[np.ndarray] = []
        rows = []
        for role in ROLES:
            shown = self.shown(role)
            recon = shown.model.reconstruct(x).float()
            samples = shown.model.sample(RECON_IMAGES, generator=seeded(seed)).float()
            outputs += [image_grid(torch.cat([x, recon]), nrow=RECON_IMAGES), image_grid(samples, nrow=RECON_IMAGES)]
            rows.append(self.likelihood_row(role, shown))
        originals = float(laplacian_variance(bundled_images("fashion-mnist", "test").unit()[:SHARPNESS_IMAGES]).mean())
        text = (
            "| model | test NLL (nats per image, lower is better) | bits per dimension | sharpness of its "
            "reconstructions |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "NLL: measured on the 10,000 Fashion-MNIST test images when each model was trained (its `metrics.json`); "
            "the VAEs' by importance sampling, the VQ-VAE's as the bound reconstruction + code length. Sharpness: the "
            f"variance of the Laplacian of each reconstruction, averaged over {SHARPNESS_IMAGES} test images (higher "
            f"keeps more edges and texture; the originals score {originals:.4f}).\n\n"
            + self.gap_table() + "\n\n" + EXPLANATION
        )  # fmt: skip
        return (*outputs, text)
