"""What the Space does, one method per feature; each is also an API endpoint. Layout lives in ``app.py``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import ModelLoadError
from ..evaluation.metrics import posterior_estimate
from ..images import image_grid, to_uint8
from ..models.base import lerp, slerp
from .inputs import Rejected, as_choice, as_float, as_int, as_latent, as_picture, user_errors
from .model_store import LoadedModel, ModelStore

MAX_SAMPLES = 64
SAMPLES_SHOWN = 16  # Generate's default: the page opens showing this many samples of the model in use
MAX_STEPS = 16
MAX_SEED = 2**31 - 1
MAX_SLIDERS = 32  # a slider per latent dimension, the most used first (a larger model's rest stay at 0)
COLLAPSED_KL = 0.01  # nats: a dimension whose KL is below this carries no information (posterior collapse)
SLIDER_RANGE = 3.0
POSTERIOR_SAMPLES = 8
ELBO_SAMPLES = 32  # draws behind Reconstruct's ELBO: its reconstruction term to ~1 nat (docs/performance.md)
MANIFOLD_SIDE = 15
ANY_CLASS = "every class"  # a conditional model's class choice: every class in turn, or (Reconstruct) the likeliest
CLASS_ELBO_SAMPLES = 16  # draws of z per class when Reconstruct finds the likeliest class


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def format_latent(z: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in z)


def class_index(loaded: LoadedModel, label: Any) -> int | None:
    """The class a request names, for a conditional model; None for 'every class' (or an unconditional model)."""
    model = loaded.model
    if label in (None, "", ANY_CLASS):
        return None
    if not model.conditional:
        raise Rejected(f"{loaded.name} is not a conditional model: leave the class empty")
    if label not in model.class_names:
        raise Rejected(f"class must be one of {', '.join(model.class_names)} or {ANY_CLASS!r}; got {label!r}")
    return model.class_names.index(label)


def fixed_class(loaded: LoadedModel, label: Any) -> int | None:
    """The class to decode with: the one asked for, else the first class (None for an unconditional model)."""
    index = class_index(loaded, label)
    return index if index is not None or not loaded.model.conditional else 0


def decode_one(loaded: LoadedModel, z: torch.Tensor, label: int | None = None) -> np.ndarray:
    return to_uint8(loaded.model.to_images(loaded.model.decode(z, label))[0])


def likeliest_class(loaded: LoadedModel, x: torch.Tensor, seed: int) -> int:
    """The class under which a conditional model gives ``x`` the highest ELBO: the model read as a classifier."""
    model = loaded.model
    elbos = [
        posterior_estimate(model, x, CLASS_ELBO_SAMPLES, generator=seeded(seed), labels=c).elbo[0]
        for c in range(model.num_classes)
    ]
    return int(torch.stack(elbos).argmax())


def latent_map(loaded: LoadedModel, label: int | None = None) -> tuple[np.ndarray, str]:
    """The 2-D manifold for a 2-D latent space; otherwise a traversal of the most active dimensions.

    A conditional model decodes with class ``label`` (default: its first class).
    """
    model = loaded.model
    if model.conditional and label is None:
        label = 0
    if model.latent_dim == 2:
        q = torch.linspace(0.05, 0.95, MANIFOLD_SIDE, dtype=torch.float64)
        grid = torch.distributions.Normal(0.0, 1.0).icdf(q).float()  # even steps in probability under the prior
        z = torch.stack(torch.meshgrid(grid.flip(0), grid, indexing="ij"), -1).reshape(-1, 2)[:, [1, 0]]
        images = model.to_images(model.decode(z, label))
        return image_grid(images, nrow=MANIFOLD_SIDE, padding=0), (
            f"The whole 2-D latent space in {MANIFOLD_SIDE}x{MANIFOLD_SIDE} decodings: z0 grows left to right, "
            "z1 bottom to top, over the 5%..95% quantiles of N(0, 1)."
        )
    ranked = loaded.dims_by_kl()
    dims = ranked[:8]
    if len(ranked) > 8 and loaded.kl_per_dim[ranked[-1]] < COLLAPSED_KL:
        dims = ranked[:7] + ranked[-1:]  # the last row shows a collapsed dimension: it changes nothing
    values = torch.linspace(-SLIDER_RANGE, SLIDER_RANGE, 9)
    rows = [model.traverse(torch.zeros(1, model.latent_dim), d, values, labels=label)[0] for d in dims]
    caption = ", ".join(f"z{d} (KL {loaded.kl_per_dim[d]:.2f})" for d in dims)
    return image_grid(torch.cat(rows), nrow=len(values)), (
        f"Each row varies one latent dimension from -3 to 3 with the others at 0; rows: {caption}. "
        "Dimensions with KL near 0 have collapsed onto the prior and change nothing"
        + (" (the last row is one)." if loaded.kl_per_dim[dims[-1]] < COLLAPSED_KL else ".")
    )


def draw_samples(loaded: LoadedModel, n: int, temperature: float, seed: int, index: int | None) -> np.ndarray:
    """A grid of ``n`` samples; a conditional model draws class ``index``, or every class in turn for None."""
    model = loaded.model
    labels = None if not model.conditional else torch.arange(n) % model.num_classes if index is None else index
    with torch.inference_mode():
        return image_grid(model.sample(n, temperature, generator=seeded(seed), labels=labels))


def first_samples(loaded: LoadedModel) -> np.ndarray:
    """What Generate shows before any click: its default draws (seed 0, temperature 1), computed once per model."""
    if "samples" not in loaded.extras:
        loaded.extras["samples"] = draw_samples(loaded, SAMPLES_SHOWN, 1.0, 0, None)
    return loaded.extras["samples"]


class Features:
    """The Space's features over the models of ``store``."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def model(self, name: Any) -> LoadedModel:
        try:
            return self.store.get(name)
        except ModelLoadError as e:
            raise Rejected(str(e)) from None

    def picture(self, loaded: LoadedModel, drawing: Any, upload: Any, what: str) -> torch.Tensor:
        return as_picture(drawing, upload, what, loaded.model.image_shape, loaded.margin)

    @user_errors
    def generate(
        self,
        model_name: str,
        n: float = SAMPLES_SHOWN,
        temperature: float = 1.0,
        seed: float = 0,
        label: str = ANY_CLASS,
    ) -> np.ndarray:
        """Sample images from the model: decode n draws of z from the prior N(0, temperature^2 I).

        Args:
            model_name: the model: a bundled name, a Hub repo id or (locally) a folder; default the model shown first.
            n: how many images, 1 to 64.
            temperature: scale of the prior draws, 0 to 2; lower gives cleaner, less varied images.
            seed: random seed, 0 to 2^31 - 1; the same seed gives the same images.
            label: a conditional model's class to draw, or "every class" (each in turn); ignored otherwise.

        Returns:
            A PNG grid of the n images (8 per row).
        """
        loaded = self.model(model_name)
        n = as_int(n, "number of samples", 1, MAX_SAMPLES)
        temperature = as_float(temperature, "temperature", 0.0, 2.0)
        seed = as_int(seed, "seed", 0, MAX_SEED)
        index = class_index(loaded, label)
        if (n, temperature, seed, index) == (SAMPLES_SHOWN, 1.0, 0, None):
            return first_samples(loaded)  # the draws the page opens with: the same for every visitor
        return draw_samples(loaded, n, temperature, seed, index)

    @user_errors
    def reconstruct(
        self, model_name: str, drawing: Any = None, upload: Any = None, seed: float = 0, label: str = ANY_CLASS
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, pd.DataFrame, np.ndarray]:
        """Reconstruct an image: encode it to q(z|x), decode the posterior mean and samples, and give its ELBO.

        Args:
            model_name: the model: a bundled name, a Hub repo id or (locally) a folder; default the model shown first.
            drawing: a Sketchpad drawing (dark strokes on white); used when no file is uploaded.
            upload: an image file (PNG, JPEG, ...), converted the way the training images look; used when given.
            seed: random seed for the draws of z ~ q(z|x).
            label: a conditional model's class for q(z|x, y) and p(x|z, y), or "every class": the class that gives
                the image the highest ELBO. Ignored for other models.

        Returns:
            The input as the model sees it, its reconstruction (PNG), 8 decoded draws z ~ q(z|x) (PNG), which
            input was used and the ELBO in nats with its reconstruction and KL parts (Markdown), the KL of each
            latent dimension (nats), and a draw x ~ p(x|z) at the posterior mean (PNG): the pixels the likelihood
            says, of which the reconstruction is the average.
        """
        loaded = self.model(model_name)
        seed = as_int(seed, "seed", 0, MAX_SEED)
        x = self.picture(loaded, drawing, upload, "image")
        model = loaded.model
        y = class_index(loaded, label)
        read_as = ""
        if model.conditional and y is None:
            y = likeliest_class(loaded, x, seed)
            read_as = f"Read as **{model.class_names[y]}**, the class under which its ELBO is highest. "
        estimate = posterior_estimate(model, x, ELBO_SAMPLES, generator=seeded(seed), labels=y)
        recon = model.to_images(model.reconstruct(x, y))  # every layer of a hierarchical model at its posterior mean
        recon_nll, kl = estimate.recon[0].item(), estimate.kl[0].item()
        used = "the uploaded picture" if upload is not None else "your drawing"
        text = (
            f"Reconstructed: **{used}**. "
            + read_as
            + (
                f"**ELBO = {-(recon_nll + kl):.1f} nats** = −(reconstruction {recon_nll:.1f} + KL {kl:.1f}); "
                f"the reconstruction term is averaged over {ELBO_SAMPLES} draws of z ~ q(z|x), "
                + ("the KL is exact." if estimate.kl_exact else "the KL over the same draws (here it depends on them).")
            )
        )
        kl_dims = estimate.kl_per_dim[0].tolist()
        chart = pd.DataFrame({"dimension": [f"z{d}" for d in range(len(kl_dims))], "KL (nats)": kl_dims})
        posterior = image_grid(estimate.samples[:POSTERIOR_SAMPLES, 0], nrow=POSTERIOR_SAMPLES)
        observed = model.to_images(model.observe_reconstruction(x[:1], y, generator=seeded(seed)))
        return to_uint8(x[0]), to_uint8(recon[0]), posterior, text, chart, to_uint8(observed[0])

    @user_errors
    def interpolate(
        self,
        model_name: str,
        ends: str = "seeds",
        drawing_a: Any = None,
        drawing_b: Any = None,
        seed_a: float = 1,
        seed_b: float = 2,
        method: str = "slerp",
        steps: float = 10,
        label: str = ANY_CLASS,
        class_a: str = "",
        class_b: str = "",
    ) -> np.ndarray:
        """Interpolate in the latent space: decode a path between two prior draws or two images' posterior means.

        Args:
            model_name: the model: a bundled name, a Hub repo id or (locally) a folder; default the model shown first.
            ends: "seeds" (two draws from the prior, given by seed_a and seed_b), "images" (drawing_a, drawing_b),
                or, for a conditional model, "classes": one prior draw (seed_a) decoded from class_a to class_b.
            drawing_a: the first image (a Sketchpad value or an image file) when ends is "images".
            drawing_b: the second image, likewise.
            seed_a: random seed of the first prior draw when ends is "seeds".
            seed_b: random seed of the second prior draw.
            method: "slerp" (along a great circle, stays where the prior has its mass) or "lerp" (a straight line).
            steps: how many images along the path, 2 to 16, both ends included.
            label: a conditional model's class for the "seeds" and "images" paths (default: its first class).
            class_a: the class at the start of a "classes" path.
            class_b: the class at its end.

        Returns:
            A PNG strip of the decoded path, one image per step.
        """
        loaded = self.model(model_name)
        model = loaded.model
        ends = as_choice(ends, "ends", ("seeds", "images", "classes"))
        if ends == "classes" and not model.conditional:
            raise Rejected(f"Between: 'classes' needs a conditional model, and {loaded.name} is not one")
        method = as_choice(method, "method", ("slerp", "lerp"))
        steps = as_int(steps, "steps", 2, MAX_STEPS)
        if ends == "classes":
            a, b = (class_index(loaded, c) for c in (class_a, class_b))
            if a is None or b is None:
                names = ", ".join(model.class_names)
                raise Rejected(f"an interpolation between classes needs class A and class B, from {names}")
            z = torch.randn(1, model.latent_dim, generator=seeded(as_int(seed_a, "seed A", 0, MAX_SEED)))
            return image_grid(model.interpolate_classes(z, a, b, steps)[0], nrow=steps)
        y = fixed_class(loaded, label)
        if ends == "images":
            za = model.encode(self.picture(loaded, drawing_a, None, "image A"), y)[0]
            zb = model.encode(self.picture(loaded, drawing_b, None, "image B"), y)[0]
        else:
            za = torch.randn(1, model.latent_dim, generator=seeded(as_int(seed_a, "seed A", 0, MAX_SEED)))
            zb = torch.randn(1, model.latent_dim, generator=seeded(as_int(seed_b, "seed B", 0, MAX_SEED)))
        t = torch.linspace(0, 1, steps)
        path = (slerp if method == "slerp" else lerp)(za, zb, t)[0]
        return image_grid(model.to_images(model.decode(path, y)), nrow=steps)

    @user_errors
    def decode(self, model_name: str, z_text: str, label: str = ANY_CLASS) -> np.ndarray:
        """Decode one latent vector z into an image.

        Args:
            model_name: the model: a bundled name, a Hub repo id or (locally) a folder; default the model shown first.
            z_text: z as comma-separated numbers, as many as the model's latent dimensions, each in [-10, 10].
            label: a conditional model's class to decode with (default: its first class); ignored otherwise.

        Returns:
            The decoded image (PNG).
        """
        loaded = self.model(model_name)
        return decode_one(loaded, as_latent(z_text, loaded.model.latent_dim), fixed_class(loaded, label))

    @user_errors
    def sliders_for(self, model_name: str, z_text: str) -> list[float]:
        """The slider values (most used dimensions first) for a typed z: text and sliders stay in step."""
        loaded = self.model(model_name)
        z = as_latent(z_text, loaded.model.latent_dim)[0]
        values = [max(-SLIDER_RANGE, min(SLIDER_RANGE, float(z[d]))) for d in loaded.dims_by_kl()[:MAX_SLIDERS]]
        return values + [0.0] * (MAX_SLIDERS - len(values))  # the hidden sliders stay at 0

    @user_errors
    def explore(self, model_name: str, label: str, *values: float) -> tuple[str, np.ndarray]:
        """Slider values (most active dimensions first) -> the latent vector and its decoding."""
        loaded = self.model(model_name)
        z = [0.0] * loaded.model.latent_dim
        for d, v in zip(loaded.dims_by_kl(), values, strict=False):
            z[d] = as_float(v, f"z{d}", -SLIDER_RANGE, SLIDER_RANGE)
        return format_latent(z), decode_one(loaded, torch.tensor([z]), fixed_class(loaded, label))

    @user_errors
    def check_model(self, choice: Any, repo: Any) -> str:
        """Load the typed repo id / folder, else the picked model; its name, or a gr.Error when it cannot load."""
        name = repo.strip() if isinstance(repo, str) and repo.strip() else choice
        self.model(name)
        return name

    def check_picked(self, choice: Any) -> str:
        """``check_model`` for a model picked from the list."""
        return self.check_model(choice, "")
