"""The Space's page: one function per tab, then ``build_demo`` wires them to the features and the model picker."""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import matplotlib
import torch

from . import gradio_patches
from .components import clear_errors
from .endpoints import (  # fmt: skip
    ANY_CLASS,
    COLLAPSED_KL,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_SLIDERS,
    MAX_STEPS,
    SAMPLES_SHOWN,
    SLIDER_RANGE,
    Features,
    decode_one,
    first_samples,
    format_latent,
)
from .endpoints import latent_map as draw_latent_map
from .inputs import user_errors
from .lab.features import Lab
from .lab.live import LiveTraining
from .lab.models import LabModels
from .lab.remedies import Remedies
from .lab.tabs import collapse_tab, compare_tab, latent_tab, live_tab, remedies_tab
from .model_store import LoadedModel, ModelStore
from .overload import BusyMessage
from .sessions import SwitchedSessions

# requests run at once: 4 keeps both cores busy while one request's Python waits for the GIL (docs/performance.md,
# "Space concurrency"); torch gets the cores / CONCURRENCY threads
CONCURRENCY = int(os.environ.get("VAE_HUB_CONCURRENCY", "4"))
QUEUE_SIZE = int(os.environ.get("VAE_HUB_QUEUE_SIZE", "64"))  # requests waiting at most; more are told to retry
DELETE_CACHE = (600, 3600)  # every 10 minutes, delete output files older than an hour
EXAMPLES = Path(__file__).resolve().parent / "examples"

INTRO = """# vae-hub: a Variational Autoencoder you can play with
An encoder maps an image to a Gaussian q(z|x) (a mean and a log-variance per latent dimension); the
**reparameterization trick** z = μ + σ·ε draws from it; a decoder maps z back to pixels. Training maximises the
**ELBO** = reconstruction log-likelihood − KL(q(z|x) ‖ N(0, I)). Sample from the prior, reconstruct your own
drawing (and see the blur of a pixel-wise likelihood), walk between two points of the **continuous** latent space,
and see which latent dimensions the model really uses (the unused ones have **collapsed** onto the prior).
"""
# small pictures (28x28) fill their box, scaled up without blurring
CSS = ".pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }"


def pixels(elem_id: str, label: str, height: int, value: Any = None) -> gr.Image:
    """An output image of small pictures, scaled up to ``height`` without blurring."""
    return gr.Image(
        value, elem_id=elem_id, label=label, height=height, format="png", elem_classes="pixelated",
        interactive=False, buttons=["download", "fullscreen"],
    )  # fmt: skip


def example(name: str) -> str:
    """The path of a bundled example picture (``vae_hub/space/examples``)."""
    return str(EXAMPLES / f"{name}.png")


def sketch(name: str) -> dict[str, Any]:
    """A bundled example picture as a Sketchpad value."""
    return {"background": example(name), "layers": [], "composite": example(name)}


def seed_box(value: int, label: str) -> gr.Number:
    return gr.Number(value, precision=0, minimum=0, maximum=MAX_SEED, label=label)


@dataclass
class ModelView:
    """Everything on the page that depends on the model in use."""

    current: gr.Textbox
    label: gr.Dropdown
    class_a: gr.Dropdown
    class_b: gr.Dropdown
    summary: gr.Markdown
    z_text: gr.Textbox
    decoded: gr.Image
    latent_map: gr.Image
    map_caption: gr.Markdown
    sliders: list[gr.Slider]
    metrics: gr.JSON
    card: gr.Markdown
    draw_hint: gr.Markdown
    samples: gr.Image  # Generate's picture: the model's default draws until the visitor asks for others
    stale: list[Any]  # the outputs of Reconstruct and Interpolate: cleared when the model changes

    def components(self) -> list[Any]:
        """In the order /load_model returns them."""
        return [self.current, self.summary, self.card, self.metrics, self.z_text, self.decoded, self.latent_map,
                self.map_caption, *self.sliders, self.label, self.class_a, self.class_b, self.draw_hint,
                self.samples, *self.stale]  # fmt: skip

    def show(self, loaded: LoadedModel) -> dict[Any, Any]:
        """The new value of each component for ``loaded``."""
        dims = loaded.dims_by_kl()[:MAX_SLIDERS]
        sliders = {s: gr.update(visible=False, value=0.0) for s in self.sliders}
        for slider, d in zip(self.sliders, dims, strict=False):
            kl = loaded.kl_per_dim[d]
            note = ", collapsed: changes nothing" if kl < COLLAPSED_KL else ""
            text = f"z{d}  (an autoencoder: no KL)" if loaded.model.deterministic else f"z{d}  (KL {kl:.2f} nats{note})"
            sliders[slider] = gr.update(visible=True, value=0.0, label=text)
        model = loaded.model
        first = 0 if model.conditional else None
        with torch.inference_mode():
            map_image, map_caption = draw_latent_map(loaded, first)
            origin = decode_one(loaded, torch.zeros(1, model.latent_dim), first)
        names = model.class_names if model.conditional else []
        metrics = {k: rounded(k, v) for k, v in loaded.metrics.get("test", {}).items() if k != "kl_per_dim"}
        return {
            self.current: loaded.name,
            self.summary: loaded.summary(),
            self.z_text: format_latent([0.0] * loaded.model.latent_dim),
            self.decoded: origin,
            self.latent_map: map_image,
            self.map_caption: map_caption,
            **sliders,
            self.metrics: metrics,
            self.card: loaded.card or "_This model has no card._",
            self.draw_hint: draw_hint(loaded),
            self.samples: first_samples(loaded),
            self.label: gr.update(choices=[ANY_CLASS, *names], value=ANY_CLASS, visible=model.conditional),
            self.class_a: gr.update(choices=names or [""], value=names[0] if names else ""),
            self.class_b: gr.update(choices=names or [""], value=names[-1] if names else ""),
            **{c: "" if isinstance(c, gr.Markdown) else None for c in self.stale},
        }


DIGIT_MODEL = "conv-mnist-5k"


def draw_hint(loaded: LoadedModel) -> str:
    """What to draw for the model in use: a model reconstructs what it was trained on (a 7 becomes a garment)."""
    dataset = loaded.dataset
    if dataset == "fashion-mnist":
        return (f"**{loaded.name} knows clothes**: draw a T-shirt, trousers, a bag or a shoe (a digit comes back as "
                f"the garment it looks most like). For digits, pick **{DIGIT_MODEL}** above.")  # fmt: skip
    if dataset in ("mnist", "kmnist"):
        what = "digits" if dataset == "mnist" else "Japanese characters"
        return f"**{loaded.name} knows handwritten {what}**: draw one."
    what = f"on {dataset}" if dataset else "on pictures this page does not know"
    return f"**{loaded.name} was trained {what}**: draw or upload something like its training images."


def rounded(key: str, value: Any) -> Any:
    """A metric as people read it: nats to 2 decimals, bits per dimension to 4."""
    if isinstance(value, float):
        return round(value, 4 if "bits" in key else 2)
    return value


# --- the tabs ----------------------------------------------------------------------------------------------------
def generate_tab(features: Features, current: gr.Textbox, label: gr.Dropdown, first: LoadedModel) -> gr.Image:
    """Returns its output, which opens showing ``first``'s default samples."""
    gr.Markdown(
        "Draw z from the prior N(0, T²I) and decode it. Lower temperature: cleaner, less varied images. "
        "A conditional model draws the class chosen under *Class* (every class: each in turn)."
    )
    with gr.Row():
        n = gr.Slider(1, MAX_SAMPLES, SAMPLES_SHOWN, step=1, label="Number of samples")
        temperature = gr.Slider(0.0, 2.0, 1.0, step=0.05, label="Temperature")
        seed = seed_box(0, "Seed")
    button = gr.Button("Generate", variant="primary")
    samples = pixels("samples", "Samples from the prior", height=420, value=first_samples(first))  # full at once
    button.click(features.generate, [current, n, temperature, seed, label], samples, api_name="generate")
    return samples


def reconstruct_tab(
    features: Features, current: gr.Textbox, label: gr.Dropdown, hint: str
) -> tuple[list[Any], gr.Markdown]:
    """Returns its outputs and the hint on what to draw (it follows the model in use)."""
    gr.Markdown(
        "Draw (pick the brush first) or upload a picture. It is converted the way the training images look "
        "(grey, light on dark, centred), encoded to q(z|x) and decoded."
    )
    draw = gr.Markdown(hint)
    with gr.Row():
        drawing = gr.Sketchpad(
            elem_id="canvas",
            label="Draw", canvas_size=(280, 280), fixed_canvas=True, type="numpy", height=340,
            brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
        )  # fmt: skip
        upload = gr.Image(label="Upload", type="filepath", image_mode=None, sources=["upload", "clipboard"], height=340,
                          elem_id="upload")  # fmt: skip
    names = ["fashion-sneaker", "fashion-ankle-boot", "fashion-bag", "fashion-trouser", "mnist-digit-7", "drawn-7"]
    examples = gr.Examples(
        [[example(name)] for name in names], [upload], label="Examples: click one to reconstruct it",
        example_labels=[name.replace("-", " ") for name in names],
    )  # fmt: skip
    with gr.Row():
        seed = seed_box(0, "Seed (z ~ q(z|x))")
        button = gr.Button("Reconstruct", variant="primary")
    with gr.Row():
        seen = pixels("seen", "Input as the model sees it", height=224)
        recon = pixels("recon", "Reconstruction: the mean of p(x|z) at z = E[z|x]", height=224)
        observed = pixels("observed", "A sample x ~ p(x|z) at the same z", height=224)
    gr.Markdown(
        "**Why the blur.** The decoder does not output an image: it outputs, for every pixel *independently*, "
        "the parameter of p(x|z) (for a Bernoulli model, the probability that the pixel is on). Where the model is "
        "unsure (the exact edge of a sleeve, a logo, a strap) the best it can do under a pixel-wise likelihood is "
        "to hedge with an in-between value, and the mean shown as the reconstruction averages all the images it "
        "finds plausible: blur. A true sample (right) draws every pixel on its own: it is sharp but speckled, "
        "because nothing ties neighbouring pixels together."
    )
    posterior = pixels("posterior", "Decoded samples z ~ q(z|x): each a different plausible reading", height=150)
    elbo_text = gr.Markdown(label="ELBO", elem_id="elbo")
    kl_chart = gr.BarPlot(
        x="dimension", y="KL (nats)", sort="-y", label="KL per latent dimension for this input, most used first"
    )
    inputs, outputs = [current, drawing, upload, seed, label], [seen, recon, posterior, elbo_text, kl_chart, observed]
    # the input touched last is the one reconstructed: drawing clears the upload, an upload or example the drawing
    # (in the browser, no request); the result names which one was used
    drawing.input(None, None, upload, js="() => null", api_visibility="private", queue=False)
    upload.upload(None, None, drawing, js="() => null", api_visibility="private", queue=False)
    examples.load_input_event.then(None, None, drawing, js="() => null", api_visibility="private", queue=False)
    button.click(features.reconstruct, inputs, outputs, api_name="reconstruct")
    examples.load_input_event.then(features.reconstruct, inputs, outputs, api_visibility="private")
    return outputs, draw


def interpolate_tab(
    features: Features, current: gr.Textbox, label: gr.Dropdown
) -> tuple[gr.Dropdown, gr.Dropdown, gr.Image]:
    """Returns the components that depend on the model: the class pickers and the output."""
    gr.Markdown(
        "Walk in a straight line (lerp) or along a great circle (slerp) between two latent codes; a conditional "
        "model can also keep z fixed and move from one class to another."
    )
    ends = gr.Radio(["seeds", "images", "classes"], value="seeds", label="Between", info="classes: conditional models")
    with gr.Row(visible=False) as class_row:
        class_a = gr.Dropdown([""], value="", label="Class A (at the z drawn with Seed A)", allow_custom_value=True)
        class_b = gr.Dropdown([""], value="", label="Class B", allow_custom_value=True)
    with gr.Row() as seed_row:
        seed_a, seed_b = seed_box(1, "Seed A"), seed_box(2, "Seed B")
    with gr.Row(visible=False) as drawing_row:
        drawing_a, drawing_b = (
            gr.Sketchpad(
                label=f"Image {end} (draw, or upload with the icon below)",
                canvas_size=(280, 280),
                fixed_canvas=True,
                type="numpy",
                height=340,
                brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
            )  # fmt: skip
            for end in "AB"
        )
    pairs = [("fashion-ankle-boot", "fashion-sneaker"), ("fashion-bag", "fashion-trouser"),
             ("mnist-digit-3", "mnist-digit-8")]  # fmt: skip
    examples = gr.Examples(
        [["images", sketch(a), sketch(b)] for a, b in pairs], [ends, drawing_a, drawing_b],
        label="Examples: click one to interpolate between its two images",
        example_labels=[f"{a.replace('-', ' ')} to {b.replace('-', ' ')}" for a, b in pairs],
    )  # fmt: skip
    with gr.Row():
        method = gr.Radio(["slerp", "lerp"], value="slerp", label="Path")
        steps = gr.Slider(2, MAX_STEPS, 10, step=1, label="Steps")
    button = gr.Button("Interpolate", variant="primary")
    strip = pixels("strip", "Interpolation", height=150)

    def show_inputs(chosen: str) -> dict[Any, Any]:
        """Only the inputs of the chosen ends: two seeds, two pictures, or one seed and two classes."""
        return {
            seed_row: gr.update(visible=chosen in ("seeds", "classes")),
            seed_b: gr.update(visible=chosen == "seeds"),
            drawing_row: gr.update(visible=chosen == "images"),
            class_row: gr.update(visible=chosen == "classes"),
        }

    ends.change(show_inputs, ends, [seed_row, seed_b, drawing_row, class_row], api_visibility="private")
    inputs = [current, ends, drawing_a, drawing_b, seed_a, seed_b, method, steps, label, class_a, class_b]
    button.click(features.interpolate, inputs, strip, api_name="interpolate")
    examples.load_input_event.then(features.interpolate, inputs, strip, api_visibility="private")
    return class_a, class_b, strip


def explore_tab(features: Features, current: gr.Textbox, label: gr.Dropdown) -> tuple[Any, ...]:
    """Sliders over the most used latent dimensions; returns the components that depend on the model."""
    gr.Markdown(
        "Move a latent dimension and decode live, or type z and press Enter. Sliders are ordered by how much the "
        "model uses them (KL to the prior); collapsed dimensions are marked."
    )
    with gr.Row():
        with gr.Column():
            sliders = [gr.Slider(-SLIDER_RANGE, SLIDER_RANGE, 0.0, step=0.1, label=f"z{i}") for i in range(MAX_SLIDERS)]
        with gr.Column():
            z_text = gr.Textbox(label="z (comma-separated; edit and press Enter)")
            decoded = pixels("decoded", "Decoded", height=280)
    map_caption = gr.Markdown(label="Latent space caption")
    latent_map = pixels("latent-map", "Latent space", height=520)
    z_text.submit(features.decode, [current, z_text, label], decoded, api_name="decode").success(
        features.sliders_for, [current, z_text], sliders, api_visibility="private"
    )
    gr.on(
        [s.release for s in sliders], features.explore, [current, label, *sliders], [z_text, decoded],
        api_visibility="private", trigger_mode="always_last",
    )  # fmt: skip
    return sliders, z_text, decoded, latent_map, map_caption


def card_tab() -> tuple[gr.JSON, gr.Markdown]:
    return gr.JSON(label="Test metrics"), gr.Markdown(label="Model card")


# --- the page ----------------------------------------------------------------------------------------------------
def build_demo(
    models: dict[str, str | Path],
    default: str | None = None,
    delete_cache: tuple[int, int] = DELETE_CACHE,
    lab: LabModels | None = None,
    queue_size: int = QUEUE_SIZE,
) -> gr.Blocks:
    """The Space for ``models`` (name -> model folder or Hub repo id); ``default`` is shown first.

    ``delete_cache``: every ``[0]`` seconds, output files older than ``[1]`` seconds are deleted. ``lab`` adds
    the Autoencoder vs VAE and Posterior collapse tabs over its twin models (loadable by name, not in the list),
    and with its ``remedies`` the Remedies tab.
    ``queue_size``: requests that may wait; one more is answered with a message saying when to retry.
    """
    gradio_patches.apply()
    # Gradio summarises its last 10,000 events in a pandas DataFrame after every event, for a monitoring page
    # this Space does not enable: 2-7 ms of a worker per request, growing with the Space's age. Never, here (set
    # GRADIO_ANALYTICS_CACHE_FREQUENCY=1 to have /monitoring/summary back). Read when gr.Blocks is created.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(10**9))
    if not models:
        raise ValueError("the Space needs at least one model")
    if lab:  # the list offers the ordinary models; the lab's twins load by name
        models = {name: source for name, source in models.items() if name not in lab.lab_only()}
    store = ModelStore({**(lab.sources() if lab else {}), **models})
    features = Features(store)
    lab_features = Lab(
        features, lab.autoencoder[0] if lab else "", lab.vae[0] if lab else "",
        {beta: name for beta, (name, _) in lab.betas.items()} if lab else {},
    )  # fmt: skip
    default = default or os.environ.get("VAE_HUB_MODEL") or next(iter(models))
    start = features.store.get(default)  # fails loudly at start-up if the default model cannot be loaded
    with gr.Blocks(title="vae-hub: Variational Autoencoders", delete_cache=delete_cache) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            picker = gr.Dropdown(list(models), value=default if default in models else None, label="Bundled models")
            repo = gr.Textbox(label="...or any vae-hub model: a Hub repo id or a local folder", placeholder="user/name")
            load_button = gr.Button("Load", scale=0)
        with gr.Row(equal_height=True):
            current = gr.Textbox(default, label="Model in use", interactive=False)
            label = gr.Dropdown(
                [ANY_CLASS], value=ANY_CLASS, label="Class (a conditional model)", visible=False,
                allow_custom_value=True,  # checked by the features, with a message naming the classes
            )  # fmt: skip
        summary = gr.Markdown(start.summary(), label="Summary")
        with gr.Tab("Generate"):
            samples = generate_tab(features, current, label, start)
        with gr.Tab("Reconstruct"):
            stale, hint = reconstruct_tab(features, current, label, draw_hint(start))
        with gr.Tab("Interpolate"):
            class_a, class_b, strip = interpolate_tab(features, current, label)
        with gr.Tab("Explore"):
            sliders, z_text, decoded, latent_map, map_caption = explore_tab(features, current, label)
        with gr.Tab("Latent space") as tab:
            space_map, space_caption = latent_tab(lab_features, tab, current, label)
        if lab:
            with gr.Tab("Autoencoder vs VAE") as tab:
                compare_tab(lab_features, tab)
            with gr.Tab("Posterior collapse") as tab:
                collapse_tab(lab_features, tab)
        if lab and lab.remedies:
            with gr.Tab("Remedies") as tab:
                remedies_tab(Remedies(features, lab.remedies, lab.autoencoder[0], lab.vae[0]), tab)
        with gr.Tab("Train one live"):
            trained, trained_name = live_tab(LiveTraining(store))
        with gr.Tab("Model card"):
            metrics, card = card_tab()
        view = ModelView(
            current, label, class_a, class_b, summary, z_text, decoded, latent_map, map_caption, sliders,
            metrics, card, hint, samples, [*stale, strip, space_map, space_caption],
        )  # fmt: skip

        switched = SwitchedSessions()

        @user_errors
        def load_model(name: Any, request: gr.Request) -> dict[Any, Any]:
            """Switch the page to another model and describe it.

            Args:
                name: a bundled model's name, a vae-hub model's Hub repo id (user/name), or (locally) a folder.

            Returns:
                The model's name, its summary, card and test metrics, then the page's Explore tab for it: z at the
                origin, its decoding, the latent map with its caption, and one slider per most used latent dimension;
                then, for a conditional model, the class picker and the two classes of Interpolate; Generate's
                picture, the new model's default samples; last, the outputs of Reconstruct and Interpolate, cleared
                (they showed the previous model).
            """
            switched.mark(request.session_hash)
            return view.show(features.model(name))

        # The name is checked first into a hidden input, so a model that cannot be loaded shows one message and
        # leaves the page (and the model in use) as it was; /load_model is the API of the second step.
        chosen = gr.Textbox(visible=False, label="Model to load")
        outputs = view.components()
        gr.on([load_button.click, repo.submit], features.check_model, [picker, repo], chosen, api_visibility="private")\
            .success(load_model, chosen, outputs, api_name="load_model")  # fmt: skip
        picker.input(features.check_picked, picker, chosen, api_visibility="private")\
            .success(load_model, chosen, outputs, api_visibility="private")  # fmt: skip

        @user_errors
        def first_view(name: Any, request: gr.Request) -> dict[Any, Any]:
            """The page as it opens: like /load_model without clearing outputs, and nothing once the visitor has
            switched models (see sessions.py): the switch may finish first."""
            if request.session_hash not in switched:
                shown = view.show(features.model(name))
                if request.session_hash not in switched:  # again: a switch may have come while it was drawn
                    return {c: v for c, v in shown.items() if c in first_outputs}
            return {c: gr.skip() for c in first_outputs}

        # what the page shows before its first view arrives stays shown: the samples (set at start-up), no spinners
        first_outputs = [c for c in outputs[: -len(view.stale)] if c is not view.samples]
        demo.load(first_view, current, first_outputs, api_visibility="private", show_progress="hidden")
        # a model trained in the page becomes the model in use
        trained.success(features.check_picked, trained_name, chosen, api_visibility="private")\
            .success(load_model, chosen, outputs, api_visibility="private")  # fmt: skip
    endpoints: dict[int, set[str]] = {}
    for fn in demo.fns.values():
        for block in fn.inputs:
            endpoints.setdefault(block._id, set()).add(f"/{fn.api_name}")
    for block in demo.blocks.values():  # API clients can send anything: every input says what it expects
        if isinstance(block, gr.components.Component):
            clear_errors(block, ", ".join(sorted(endpoints.get(block._id, ()))))
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=queue_size)
    return demo


def server_options(demo: gr.Blocks) -> dict[str, Any]:
    """``demo.launch``'s options for this page: its style, its links, and a full queue answered with a message."""
    from starlette.middleware import Middleware

    return {"css": CSS, "footer_links": ["api"], "app_kwargs": {"middleware": [Middleware(BusyMessage, blocks=demo)]}}


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None) -> None:
    """Serve ``demo``: host and port from the arguments, else GRADIO_SERVER_NAME / GRADIO_SERVER_PORT."""
    logging.basicConfig(level=logging.WARNING)  # the libraries' warnings; their per-request INFO lines are noise
    logging.getLogger("vae-hub-space").setLevel(logging.INFO)  # models loaded, inputs rejected: one line each
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))  # concurrent requests share the cores
    # Gradio asks matplotlib for its backend around every event; unset, that imports pyplot on the first one and
    # holds up every request for ~0.2 s. Gradio switches to Agg for each event anyway.
    matplotlib.use("agg")
    # Everything loaded so far (torch, Gradio, the models) lives as long as the Space: out of the garbage
    # collector's full passes, which otherwise stop requests under load (docs/performance.md, "Garbage collection").
    gc.freeze()
    demo.launch(
        server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        mcp_server=mcp_wanted(),
        **server_options(demo),
    )


def mcp_wanted() -> bool:
    """Serve the endpoints as MCP tools: as GRADIO_MCP_SERVER says, else whenever the mcp package is installed."""
    if "GRADIO_MCP_SERVER" in os.environ:
        return os.environ["GRADIO_MCP_SERVER"].strip().lower() in ("1", "true", "yes")
    return importlib.util.find_spec("mcp") is not None
