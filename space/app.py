"""vae-hub Space: sample, reconstruct, interpolate and explore a Variational Autoencoder in the browser.

Run locally with ``python space/app.py`` (port from GRADIO_SERVER_PORT, default 7860; host 127.0.0.1 unless
GRADIO_SERVER_NAME says otherwise). On Hugging Face Spaces the same file runs as is. Every feature is also an API
endpoint for ``gradio_client``: /generate, /reconstruct, /interpolate, /decode and /load_model.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however this file is loaded

import gradio_patches  # noqa: E402
from components import clear_errors  # noqa: E402
from model_store import BUNDLED, DEFAULT_MODEL, LoadedModel, ModelLoadError, ModelStore  # noqa: E402

from vae_hub.base import lerp, slerp  # noqa: E402
from vae_hub.images import ImageInputError, image_grid, open_image, prepare_image, to_uint8  # noqa: E402
from vae_hub.metrics import posterior_estimate  # noqa: E402

log = logging.getLogger("vae-hub-space")
MAX_SAMPLES = 64
MAX_STEPS = 16
MAX_SEED = 2**31 - 1
MAX_SLIDERS = 10  # the most active latent dimensions get a slider; the others stay at 0 (the prior mean)
SLIDER_RANGE = 3.0
POSTERIOR_SAMPLES = 8
ELBO_SAMPLES = 64
MANIFOLD_SIDE = 15
CONCURRENCY = int(os.environ.get("VAE_HUB_CONCURRENCY", "2"))

store = ModelStore()

INTRO = """# vae-hub: a Variational Autoencoder you can play with
An encoder maps an image to a Gaussian q(z|x) (a mean and a log-variance per latent dimension); the
**reparameterization trick** z = μ + σ·ε draws from it; a decoder maps z back to pixels. Training maximises the
**ELBO** = reconstruction log-likelihood − KL(q(z|x) ‖ N(0, I)). Sample from the prior, reconstruct your own
drawing (and see the blur of a pixel-wise likelihood), walk between two points of the **continuous** latent space,
and see which latent dimensions the model really uses (the unused ones have **collapsed** onto the prior).
"""
# small pictures (28x28) fill their box, scaled up without blurring
CSS = ".pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"


# --- input checks ----------------------------------------------------------------------------------------------
def as_int(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi] from an API value, or a gr.Error that says what was expected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}")
    if value != int(value) or not lo <= value <= hi:
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}")
    return int(value)


def as_float(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, got {value!r}")
    return float(value)


def as_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise gr.Error(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def get_model(name: Any) -> LoadedModel:
    try:
        return store.get(name)
    except ModelLoadError as e:
        raise gr.Error(str(e)) from None


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` under inference mode; bad input becomes a gr.Error with its message, anything else is logged."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            with torch.inference_mode():
                return fn(*args)
        except gr.Error:
            raise
        except (ImageInputError, ValueError, TypeError) as e:
            raise gr.Error(str(e)) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("something went wrong on the server (it is logged); please try again") from None

    return wrapper


def drawing_of(value: Any, what: str) -> np.ndarray | None:
    """The composite picture of a Sketchpad value, or None when nothing was drawn."""
    if value is None:
        return None
    if not isinstance(value, dict) or "composite" not in value:
        raise gr.Error(f"{what} must be a Sketchpad value with a 'composite' image, got {type(value).__name__}")
    return value["composite"]


def picture(loaded: LoadedModel, drawing: Any, upload: Any, what: str) -> torch.Tensor:
    """Model input (1, C, H, W) from an uploaded file (preferred when given) or a drawing."""
    if upload is not None and not isinstance(upload, str):
        raise gr.Error(f"{what}: expected an uploaded image file, got {type(upload).__name__}")
    drawn = drawing_of(drawing, what) if upload is None else None
    if upload is None and drawn is None:
        raise gr.Error(f"{what}: the canvas is empty. Pick the brush and draw, or upload an image")
    try:
        image = open_image(upload) if upload is not None else drawn
        return prepare_image(image, loaded.model.image_shape, margin=loaded.margin)
    except ImageInputError as e:
        raise gr.Error(f"{what}: {e}") from None


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- the features (each an API endpoint) -----------------------------------------------------------------------
@user_errors
def generate(model_name: str, n: float, temperature: float, seed: float) -> np.ndarray:
    """Decode n draws from the prior N(0, temperature^2 I) into a grid."""
    loaded = get_model(model_name)
    n = as_int(n, "number of samples", 1, MAX_SAMPLES)
    temperature = as_float(temperature, "temperature", 0.0, 2.0)
    seed = as_int(seed, "seed", 0, MAX_SEED)
    return image_grid(loaded.model.sample(n, temperature, generator=seeded(seed)))


@user_errors
def reconstruct(
    model_name: str, drawing: Any, upload: Any, seed: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, pd.DataFrame]:
    """The input as the model sees it, its reconstruction, posterior samples, its ELBO and KL per dimension."""
    loaded = get_model(model_name)
    seed = as_int(seed, "seed", 0, MAX_SEED)
    x = picture(loaded, drawing, upload, "image")
    model = loaded.model
    mu, _ = model.encode(x)
    recon = model.to_images(model.decode(mu))
    estimate = posterior_estimate(model, x, ELBO_SAMPLES, generator=seeded(seed))
    recon_nll, kl = estimate.recon[0].item(), estimate.kl[0].item()
    text = (
        f"**ELBO = {-(recon_nll + kl):.1f} nats** = −(reconstruction {recon_nll:.1f} + KL {kl:.1f}); "
        f"the reconstruction term is averaged over {ELBO_SAMPLES} draws of z ~ q(z|x), the KL is exact."
    )
    kl_dims = estimate.kl_per_dim[0].tolist()
    chart = pd.DataFrame({"dimension": [f"z{d}" for d in range(len(kl_dims))], "KL (nats)": kl_dims})
    posterior = image_grid(estimate.samples[:POSTERIOR_SAMPLES, 0], nrow=POSTERIOR_SAMPLES)
    return to_uint8(x[0]), to_uint8(recon[0]), posterior, text, chart


@user_errors
def interpolate(
    model_name: str,
    ends: str,
    drawing_a: Any,
    drawing_b: Any,
    seed_a: float,
    seed_b: float,
    method: str,
    steps: float,
) -> np.ndarray:
    """Decode a path between two images' posterior means, or between two prior draws, as a strip."""
    loaded = get_model(model_name)
    model = loaded.model
    ends = as_choice(ends, "ends", ("seeds", "images"))
    method = as_choice(method, "method", ("slerp", "lerp"))
    steps = as_int(steps, "steps", 2, MAX_STEPS)
    if ends == "images":
        za = model.encode(picture(loaded, drawing_a, None, "image A"))[0]
        zb = model.encode(picture(loaded, drawing_b, None, "image B"))[0]
    else:
        za = torch.randn(1, model.latent_dim, generator=seeded(as_int(seed_a, "seed A", 0, MAX_SEED)))
        zb = torch.randn(1, model.latent_dim, generator=seeded(as_int(seed_b, "seed B", 0, MAX_SEED)))
    t = torch.linspace(0, 1, steps)
    path = (slerp if method == "slerp" else lerp)(za, zb, t)[0]
    return image_grid(model.to_images(model.decode(path)), nrow=steps)


def parse_latent(text: Any, latent_dim: int) -> torch.Tensor:
    if not isinstance(text, str):
        raise gr.Error(f"z must be a string of {latent_dim} comma-separated numbers, got {type(text).__name__}")
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise gr.Error(f"z must be {latent_dim} comma-separated numbers, got {text[:80]!r}") from None
    if len(values) != latent_dim:
        raise gr.Error(f"z must hold {latent_dim} numbers for this model (its latent size), got {len(values)}")
    if not all(math.isfinite(v) and abs(v) <= 10 for v in values):
        raise gr.Error("each value of z must be a finite number between -10 and 10")
    return torch.tensor([values])


def format_latent(z: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in z)


def decode_one(loaded: LoadedModel, z: torch.Tensor) -> np.ndarray:
    return to_uint8(loaded.model.to_images(loaded.model.decode(z))[0])


@user_errors
def decode(model_name: str, z_text: str) -> np.ndarray:
    """Decode one latent vector given as comma-separated numbers."""
    loaded = get_model(model_name)
    return decode_one(loaded, parse_latent(z_text, loaded.model.latent_dim))


@user_errors
def explore(model_name: str, *values: float) -> tuple[str, np.ndarray]:
    """Slider values (most active dimensions first) -> the latent vector and its decoding."""
    loaded = get_model(model_name)
    z = [0.0] * loaded.model.latent_dim
    for d, v in zip(loaded.dims_by_kl(), values, strict=False):
        z[d] = as_float(v, f"z{d}", -SLIDER_RANGE, SLIDER_RANGE)
    return format_latent(z), decode_one(loaded, torch.tensor([z]))


def latent_map(loaded: LoadedModel) -> tuple[np.ndarray, str]:
    """The 2-D manifold for a 2-D latent space; otherwise a traversal of the most active dimensions."""
    model = loaded.model
    if model.latent_dim == 2:
        q = torch.linspace(0.05, 0.95, MANIFOLD_SIDE, dtype=torch.float64)
        grid = torch.distributions.Normal(0.0, 1.0).icdf(q).float()  # even steps in probability under the prior
        z = torch.stack(torch.meshgrid(grid.flip(0), grid, indexing="ij"), -1).reshape(-1, 2)[:, [1, 0]]
        images = model.to_images(model.decode(z))
        return image_grid(images, nrow=MANIFOLD_SIDE, padding=0), (
            f"The whole 2-D latent space in {MANIFOLD_SIDE}x{MANIFOLD_SIDE} decodings: z0 grows left to right, "
            "z1 bottom to top, over the 5%..95% quantiles of N(0, 1)."
        )
    dims = loaded.dims_by_kl()[:8]
    values = torch.linspace(-SLIDER_RANGE, SLIDER_RANGE, 9)
    rows = [model.traverse(torch.zeros(1, model.latent_dim), d, values)[0] for d in dims]
    caption = ", ".join(f"z{d} (KL {loaded.kl_per_dim[d]:.2f})" for d in dims)
    return image_grid(torch.cat(rows), nrow=len(values)), (
        f"Each row varies one latent dimension from -3 to 3 with the others at 0; rows: {caption}. "
        "Dimensions with KL near 0 have collapsed onto the prior and change nothing."
    )


@user_errors
@user_errors
def check_model(choice: Any, repo: Any) -> str:
    """The page's first step: load the typed repo id / folder, else the picked bundled model, or raise gr.Error.

    Its only output is invisible, so a failure shows as a message and leaves the page (and the model in use) as is.
    """
    name = repo.strip() if isinstance(repo, str) and repo.strip() else choice
    get_model(name)
    return name


@user_errors
def load_model(name: Any) -> list[Any]:
    """Switch to a model (bundled name, Hub repo id or local folder): everything on the page that depends on it."""
    return model_view(get_model(name))


def model_view(loaded: LoadedModel) -> list[Any]:
    """Everything on the page that depends on the model in use."""
    dims = loaded.dims_by_kl()[:MAX_SLIDERS]
    sliders = [gr.update(visible=False, value=0.0)] * MAX_SLIDERS
    for i, d in enumerate(dims):
        sliders[i] = gr.update(visible=True, value=0.0, label=f"z{d}  (KL {loaded.kl_per_dim[d]:.2f} nats)")
    with torch.inference_mode():
        map_image, map_caption = latent_map(loaded)
        origin = decode_one(loaded, torch.zeros(1, loaded.model.latent_dim))
    test = loaded.metrics.get("test", {})
    metrics = {k: v for k, v in test.items() if k != "kl_per_dim"}
    return [
        loaded.name,
        loaded.summary(),
        loaded.card or "_This model has no card._",
        metrics,
        format_latent([0.0] * loaded.model.latent_dim),
        origin,
        map_image,
        map_caption,
        *sliders,
    ]


def pixels(elem_id: str, label: str, height: int) -> gr.Image:
    """An output image of small pictures, scaled up to ``height`` without blurring."""
    return gr.Image(
        elem_id=elem_id, label=label, height=height, format="png", elem_classes="pixelated",
        interactive=False, buttons=["download", "fullscreen"],
    )  # fmt: skip


def build_demo() -> gr.Blocks:
    gradio_patches.apply()
    default = store.get(DEFAULT_MODEL)  # fails loudly at start-up if the default model cannot be loaded
    with gr.Blocks(title="vae-hub: Variational Autoencoders") as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            picker = gr.Dropdown(
                list(BUNDLED), value=DEFAULT_MODEL if DEFAULT_MODEL in BUNDLED else None, label="Bundled models"
            )
            repo = gr.Textbox(label="...or any vae-hub model: a Hub repo id or a local folder", placeholder="user/name")
            load_button = gr.Button("Load", scale=0)
        current = gr.Textbox(DEFAULT_MODEL, label="Model in use", interactive=False)
        summary = gr.Markdown(default.summary(), label="Summary")

        with gr.Tab("Generate"):
            gr.Markdown(
                "Draw z from the prior N(0, T²I) and decode it. Lower temperature: cleaner, less varied images."
            )
            with gr.Row():
                n = gr.Slider(1, MAX_SAMPLES, 16, step=1, label="Number of samples")
                temperature = gr.Slider(0.0, 2.0, 1.0, step=0.05, label="Temperature")
                seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
            generate_button = gr.Button("Generate", variant="primary")
            samples = pixels("samples", "Samples from the prior", height=420)

        with gr.Tab("Reconstruct"):
            gr.Markdown(
                "Draw (pick the brush first) or upload a picture. It is converted the way the training images look "
                "(grey, light on dark, centred), encoded to q(z|x) and decoded. The reconstruction decodes the "
                "posterior mean: the blur is what a pixel-wise likelihood averages over."
            )
            with gr.Row():
                drawing = gr.Sketchpad(
                    elem_id="canvas",
                    label="Draw", canvas_size=(280, 280), fixed_canvas=True, type="numpy", height=340,
                    brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
                )  # fmt: skip
                upload = gr.Image(
                    label="Upload", type="filepath", image_mode=None, sources=["upload", "clipboard"], height=340
                )
            with gr.Row():
                recon_seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed (z ~ q(z|x))")
                reconstruct_button = gr.Button("Reconstruct", variant="primary")
            with gr.Row():
                seen = pixels("seen", "Input as the model sees it", height=224)
                recon = pixels("recon", "Reconstruction (posterior mean)", height=224)
            posterior = pixels("posterior", "Decoded samples z ~ q(z|x)", height=150)
            elbo_text = gr.Markdown(label="ELBO")
            kl_chart = gr.BarPlot(
                x="dimension", y="KL (nats)", sort="-y", label="KL per latent dimension for this input, most used first"
            )

        with gr.Tab("Interpolate"):
            gr.Markdown("Walk in a straight line (lerp) or along a great circle (slerp) between two latent codes.")
            ends = gr.Radio(["seeds", "images"], value="seeds", label="Between")
            with gr.Row():
                seed_a = gr.Number(1, precision=0, minimum=0, maximum=MAX_SEED, label="Seed A")
                seed_b = gr.Number(2, precision=0, minimum=0, maximum=MAX_SEED, label="Seed B")
            with gr.Row():
                drawing_a, drawing_b = (
                    gr.Sketchpad(label=f"Image {end} (draw or upload)", sources=("upload",), type="numpy", height=300)
                    for end in "AB"
                )
            with gr.Row():
                method = gr.Radio(["slerp", "lerp"], value="slerp", label="Path")
                steps = gr.Slider(2, MAX_STEPS, 10, step=1, label="Steps")
            interpolate_button = gr.Button("Interpolate", variant="primary")
            strip = pixels("strip", "Interpolation", height=150)

        with gr.Tab("Explore"):
            gr.Markdown("Move a latent dimension and decode live. Sliders are ordered by how much the model uses them.")
            with gr.Row():
                with gr.Column():
                    sliders = [
                        gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, 0.0, step=0.1, label=f"z{i}") for i in range(MAX_SLIDERS)
                    ]
                with gr.Column():
                    z_text = gr.Textbox(label="z (comma-separated; edit and press Enter)")
                    decoded = pixels("decoded", "Decoded", height=280)
            map_caption = gr.Markdown(label="Latent space caption")
            latent_image = pixels("latent-map", "Latent space", height=520)

        with gr.Tab("Model card"):
            metrics = gr.JSON(label="Test metrics")
            card = gr.Markdown(label="Model card")

        view = [current, summary, card, metrics, z_text, decoded, latent_image, map_caption, *sliders]
        generate_button.click(generate, [current, n, temperature, seed], samples, api_name="generate")
        reconstruct_button.click(
            reconstruct, [current, drawing, upload, recon_seed], [seen, recon, posterior, elbo_text, kl_chart],
            api_name="reconstruct",
        )  # fmt: skip
        interpolate_button.click(
            interpolate, [current, ends, drawing_a, drawing_b, seed_a, seed_b, method, steps], strip,
            api_name="interpolate",
        )  # fmt: skip
        z_text.submit(decode, [current, z_text], decoded, api_name="decode")
        gr.on(
            [s.release for s in sliders], explore, [current, *sliders], [z_text, decoded],
            api_visibility="private", trigger_mode="always_last",
        )  # fmt: skip
        chosen = gr.Textbox(visible=False, label="Model to load")  # the API input of /load_model
        gr.on([load_button.click, repo.submit], check_model, [picker, repo], chosen, api_visibility="private").success(
            load_model, chosen, view, api_name="load_model"
        )
        picker.input(lambda choice: check_model(choice, ""), picker, chosen, api_visibility="private").success(
            load_model, chosen, view, api_visibility="private"
        )
        demo.load(lambda name: model_view(get_model(name)), current, view, api_visibility="private")
    for block in demo.blocks.values():  # API clients can send anything: every input says what it expects
        if isinstance(block, gr.components.Component):
            clear_errors(block)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))  # concurrent requests share the cores
    demo = build_demo()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        css=CSS,
        footer_links=["api"],
    )


if __name__ == "__main__":
    main()
