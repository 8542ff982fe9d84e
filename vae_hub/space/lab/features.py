"""The Space's lab: the textbook VAE's claims made visible. A latent map of any model, an autoencoder beside its VAE
twin (gaps vs. a complete latent space), and beta twins sliding into posterior collapse. Layout lives in ``tabs.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ...data.bundled import SOURCES, bundled_images
from ...evaluation.latent_space import (
    Gaps,
    fitted_gaussian_draws,
    gaps,
    nearest_distances,
    posterior_means,
)
from ...evaluation.metrics import kl_per_dimension
from ...images import image_grid, to_uint8
from ...models.base import lerp
from ...models.mixture import GaussianMixture
from ..endpoints import COLLAPSED_KL, MAX_SEED, Features, fixed_class, likeliest_class, seeded
from ..inputs import Rejected, as_choice, as_float, as_int, user_errors
from ..model_store import LoadedModel
from .latent_codes import MapData, encode_sample

GAP_DRAWS = 2000  # prior draws behind each model's gap figure (seed 0)
MIXTURE_COMPONENTS = 10
SHOWN_DRAWS = 16
PATH_STEPS = 12
RECON_IMAGES = 8


def map_data(loaded: LoadedModel) -> MapData:
    """The bundled test images of the model's data set, encoded once per model (cached on ``loaded``)."""
    if "map" in loaded.extras:
        return loaded.extras["map"]
    model, dataset = loaded.model, loaded.dataset
    if dataset not in SOURCES or model.image_shape != (1, 28, 28):
        known = " or ".join(SOURCES.values())
        raise Rejected(
            f"the latent map draws bundled {known} test images, and {loaded.name} was trained on "
            f"{dataset or 'unknown data'} at {'x'.join(map(str, model.image_shape))}: no map for it"
        )
    loaded.extras["map"] = encode_sample(model, dataset)
    return loaded.extras["map"]


def map_caption(data: MapData) -> str:
    kind = data.plane.kind
    share = "" if kind.startswith("the 2-D") else f" (the plane holds {data.plane.explained:.0%} of their variance)"
    return (
        f"{len(data.points):,} {SOURCES[data.dataset]} test images, each at its posterior mean E[z|x], on {kind}"
        f"{share}. Dashed: the prior N(0, I) at 1, 2 and 3 sigma. Click the map (or type coordinates) to decode "
        "that point."
    )


def gap_figures(loaded: LoadedModel) -> tuple[Gaps, Gaps, Gaps, Tensor]:
    """The model's gap figures over GAP_DRAWS draws from its prior (N(0, I), or the VampPrior), from the Gaussian
    fitted to its codes and from a
    mixture of MIXTURE_COMPONENTS fitted to them, and the training codes they were measured against (cached on
    ``loaded``)."""
    if "gaps" in loaded.extras:
        return loaded.extras["gaps"]
    train = bundled_images("fashion-mnist", "train")
    with torch.inference_mode():
        codes = posterior_means(loaded.model, train.unit(), train.labels)
    eps = torch.randn(GAP_DRAWS, codes.shape[1], generator=seeded(0))
    mixture = GaussianMixture.fit(codes, MIXTURE_COMPONENTS).sample(GAP_DRAWS, generator=seeded(0))
    prior = loaded.model.prior_sample(GAP_DRAWS, generator=seeded(0))  # for N(0, I): the same draws as eps
    loaded.extras["gaps"] = (gaps(codes, prior), gaps(codes, fitted_gaussian_draws(codes, eps)),
                             gaps(codes, mixture), codes)  # fmt: skip
    return loaded.extras["gaps"]


def decode_grid(loaded: LoadedModel, z: Tensor, nrow: int, label: int | None = None) -> np.ndarray:
    model = loaded.model
    with torch.inference_mode():
        return image_grid(model.to_images(model.decode(z, label)), nrow=nrow)


class Lab:
    """The lab's features over the page's ``Features`` (its models), with the twin models it compares."""

    def __init__(self, features: Features, autoencoder: str, vae: str, betas: dict[str, str]) -> None:
        self.features = features
        self.autoencoder, self.vae, self.betas = autoencoder, vae, betas

    # --- Latent space -----------------------------------------------------------------------------------------
    @user_errors
    def latent_map(self, model_name: str, drawing: Any = None, upload: Any = None) -> tuple[np.ndarray, str]:
        """The latent space of a model: its bundled test images at their posterior means, coloured by class.

        Args:
            model_name: a model trained on Fashion-MNIST or MNIST (28x28 grey): a bundled name or a Hub repo id.
            drawing: optional Sketchpad drawing to mark on the map (encoded like Reconstruct's input; by a
                conditional model, under the class that gives it the highest ELBO).
            upload: optional image file to mark instead.

        Returns:
            The map (PNG) and a caption saying what is drawn (for latents above 2-D: a PCA plane of the means).
        """
        loaded = self.features.model(model_name)
        data = map_data(loaded)
        marks, caption = [], map_caption(data)
        if drawing is not None or upload is not None:
            x = self.features.picture(loaded, drawing, upload, "drawing")
            model, read_as = loaded.model, ""
            with torch.inference_mode():  # a conditional model encodes it as it encodes the test images: with its class
                y = likeliest_class(loaded, x, seed=0) if model.conditional else None
                mu = model.encode(x, y)[0]
            if y is not None:
                read_as = f", read as {model.class_names[y]} (the class under which its ELBO is highest)"
            px, py = data.plane.to_plane(mu)[0].tolist()
            marks.append((px, py, "your drawing"))
            caption += f" The star is your drawing{read_as}, at ({px:.2f}, {py:.2f})."
        title = f"{loaded.name}:\nposterior means of {SOURCES[data.dataset]} test images"
        return data.draw(title, marks), caption

    @user_errors
    def decode_point(self, model_name: str, x: float, y: float, label: str = "") -> np.ndarray:
        """Decode a point of the latent map's plane.

        Args:
            model_name: the model (as for /latent_map).
            x: the point's first coordinate on the map, -50 to 50.
            y: its second coordinate.
            label: a conditional model's class to decode with (default its first class).

        Returns:
            The decoded image (PNG).
        """
        loaded = self.features.model(model_name)
        data = map_data(loaded)
        p = torch.tensor([[as_float(x, "x", -50, 50), as_float(y, "y", -50, 50)]])
        z = data.plane.to_latent(p)
        with torch.inference_mode():
            return to_uint8(loaded.model.to_images(loaded.model.decode(z, fixed_class(loaded, label)))[0])

    def clicked(self, model_name: str, px: float, py: float) -> tuple[float, float]:
        """Plane coordinates of a click on the map picture."""
        data = map_data(self.features.model(model_name))
        x, y = data.view.from_pixel(px, py)
        return round(x, 3), round(y, 3)

    # --- Autoencoder vs VAE -----------------------------------------------------------------------------------
    @user_errors
    def compare(self, seed: float = 0, class_a: str = "Trouser", class_b: str = "Bag") -> tuple[Any, ...]:
        """A plain autoencoder beside its VAE twin (same data, architecture and training; 2-D latents).

        Args:
            seed: random seed of the 16 prior draws decoded by each model, 0 to 2^31 - 1.
            class_a: the Fashion-MNIST class of the interpolation's first image.
            class_b: the class of its last image.

        Returns:
            For the autoencoder then the VAE: its latent map with the path drawn on it (PNG), the same 16 draws
            z ~ N(0, I) decoded (PNG), the path decoded (PNG); then a Markdown table of the gap figures.
        """
        seed = as_int(seed, "seed", 0, MAX_SEED)
        names = bundled_images("fashion-mnist", "test").class_names
        a = names.index(as_choice(class_a, "class A", tuple(names)))
        b = names.index(as_choice(class_b, "class B", tuple(names)))
        eps = torch.randn(SHOWN_DRAWS, 2, generator=seeded(seed))
        outputs, rows = [], []
        for name in (self.autoencoder, self.vae):
            loaded = self.features.model(name)
            data = map_data(loaded)
            prior, fitted, mixed, train_codes = gap_figures(loaded)
            ends = torch.stack([data.codes[(data.labels == c).nonzero()[0, 0]] for c in (a, b)])
            path = lerp(ends[:1], ends[1:], torch.linspace(0, 1, PATH_STEPS))[0]
            in_gap = nearest_distances(path, train_codes) > prior.threshold
            points = data.plane.to_plane(path)
            marks = [(*points[0].tolist(), names[a]), (*points[-1].tolist(), names[b])]
            marks += [(px, py, "") for (px, py), gap in zip(points[1:-1].tolist(), in_gap[1:-1], strict=True) if gap]
            kind = "autoencoder" if loaded.model.deterministic else "VAE"
            title = f"{kind} ({name}):\ntest images' codes; stars: the path's points in a gap"
            outputs += [
                data.draw(title, marks),
                decode_grid(loaded, eps, nrow=8),  # the same prior draws for both
                decode_grid(loaded, path, nrow=PATH_STEPS),
            ]
            rows.append(
                f"| {kind} | {prior.fraction:.1%} | {prior.median_draw / prior.median_code:.1f} | "
                f"{fitted.fraction:.1%} | {mixed.fraction:.1%} | {int(in_gap.sum())} of {PATH_STEPS} |"
            )
        text = (
            "| model | N(0, I) draws in a gap | their distance to the nearest code (in code spacings) | draws from a "
            f"Gaussian fitted to its codes, in a gap | draws from a mixture of {MIXTURE_COMPONENTS} Gaussians fitted "
            "to its codes, in a gap | path steps in a gap |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            f"A point is *in a gap* when it is farther from every encoded training image (4,000 of them) than 95% "
            f"of the encoded images are from their nearest neighbour; {GAP_DRAWS:,} draws. Sampling means drawing z "
            "from N(0, I) and decoding it. The VAE's KL term pulls its codes onto that prior, so its draws land among "
            "codes and decode to clothes (**complete**), and a path moves gradually (**continuous**). Nothing asks "
            "the autoencoder's codes to be anywhere in particular: they spread over their own scale with empty "
            "space between classes, so N(0, I) draws mostly fall in gaps and decode to blends. Fitting a Gaussian to "
            "its codes after training is a repair the autoencoder needs; a mixture of Gaussians fitted to the codes "
            "(`vae-hub sample --sampler gmm`) repairs both, since even the VAE's codes leave some of the prior empty."
        )
        return (*outputs, text)

    # --- Posterior collapse -----------------------------------------------------------------------------------
    @user_errors
    def collapse(self, seed: float = 0) -> tuple[Any, ...]:
        """The beta twins (the same VAE trained with the KL term weighted by beta), from low to high beta.

        Args:
            seed: random seed of the prior samples, 0 to 2^31 - 1.

        Returns:
            For each beta: a Markdown summary (active units, KL, reconstruction), reconstructions of the same
            test images (originals on top, PNG), prior samples (PNG) and the KL of each latent dimension.
        """
        seed = as_int(seed, "seed", 0, MAX_SEED)
        sample = bundled_images("fashion-mnist", "test")
        x = sample.unit()[:RECON_IMAGES]
        outputs: list[Any] = []
        for beta, name in self.betas.items():
            loaded = self.features.model(name)
            model, test = loaded.model, loaded.metrics.get("test", {})
            with torch.inference_mode():
                recon = model.reconstruct(x)
                samples = model.sample(RECON_IMAGES, generator=seeded(seed))
            kl = test.get("kl_per_dim") or kl_per_dimension(model, sample.unit()[:500]).tolist()
            active = test.get("active_units", sum(v >= COLLAPSED_KL for v in kl))
            summary = (
                f"**beta = {beta}**: {active} of {model.latent_dim} active units (dimensions whose posterior mean "
                f"varies with x); KL {sum(kl):.1f} nats, reconstruction term {test.get('recon', float('nan')):.1f} "
                "nats (test set)"
            )
            chart = pd.DataFrame({"dimension": [f"z{d:02d}" for d in range(len(kl))], "KL (nats)": kl})  # in order
            outputs += [summary, image_grid(torch.cat([x, recon]), nrow=RECON_IMAGES),
                        image_grid(samples, nrow=RECON_IMAGES), chart]  # fmt: skip
        return tuple(outputs)
