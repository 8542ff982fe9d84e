"""The lab's tabs: Latent space, Autoencoder vs VAE, Posterior collapse, Remedies and Train one live (features in
``features.py``, ``remedies.py`` and ``live.py``)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ...data.bundled import bundled_images
from ..endpoints import MAX_SEED
from .features import Lab
from .live import MAX_BUDGET_S, MAX_EPOCHS, MAX_LATENT, LiveTraining
from .remedies import ROLES, Remedies


def pixels(elem_id: str, label: str, height: int) -> gr.Image:
    return gr.Image(elem_id=elem_id, label=label, height=height, format="png", elem_classes="pixelated",
                    interactive=False, buttons=["download", "fullscreen"])  # fmt: skip


def chart(label: str) -> gr.BarPlot:
    return gr.BarPlot(x="dimension", y="KL (nats)", label=label, height=180, y_lim=[0, None])


def latent_tab(lab: Lab, tab: gr.Tab, current: gr.Textbox, label: gr.Dropdown) -> tuple[gr.Image, gr.Markdown]:
    """Returns the map and its caption (they follow the model in use; drawn when the tab opens)."""
    gr.Markdown(
        "Every dot is a test image at its posterior mean E[z|x], coloured by class; the dashed circles are the "
        "prior N(0, I) at 1, 2 and 3 sigma. Click the map to decode that point, or draw something to see where "
        "the encoder puts it."
    )
    with gr.Row():
        with gr.Column(scale=3):
            the_map = gr.Image(elem_id="latent-space-map", label="Latent space (click a point)", format="png",
                               interactive=False, height=560, buttons=["download", "fullscreen"])  # fmt: skip
            caption = gr.Markdown()
        with gr.Column(scale=2):
            with gr.Row():
                x = gr.Number(0.0, label="x (on the map)")
                y = gr.Number(0.0, label="y")
            decode_button = gr.Button("Decode this point")
            decoded = pixels("map-decoded", "Decoded", height=200)
            drawing = gr.Sketchpad(
                label="Draw, then place it on the map", canvas_size=(280, 280), fixed_canvas=True, type="numpy",
                height=300, brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
            )  # fmt: skip
            place = gr.Button("Place my drawing on the map", variant="primary")
    show = gr.Button("Draw the map", variant="secondary")
    place.click(lab.latent_map, [current, drawing], [the_map, caption], api_name="latent_map")
    gr.on([show.click, tab.select], lab.latent_map, [current], [the_map, caption], api_name="latent_map_of_tab",
          api_visibility="private")  # fmt: skip
    decode_button.click(lab.decode_point, [current, x, y, label], decoded, api_name="decode_point")

    def on_click(name: str, chosen: str, evt: gr.SelectData) -> tuple[Any, Any, Any]:
        px, py = evt.index
        cx, cy = lab.clicked(name, px, py)
        return cx, cy, lab.decode_point(name, cx, cy, chosen)

    the_map.select(on_click, [current, label], [x, y, decoded], api_visibility="private")
    return the_map, caption


def compare_tab(lab: Lab, tab: gr.Tab) -> None:
    """Its figures are drawn when the tab opens, and again for another seed or path."""
    gr.Markdown(
        "A plain (*traditional*) autoencoder (z = encoder(x), no KL term) beside its VAE twin: the same "
        "784-400-2 MLP, the same Fashion-MNIST images and epochs; only the KL term differs."
    )
    names = bundled_images("fashion-mnist", "test").class_names
    with gr.Row():
        seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed of the prior draws")
        class_a = gr.Dropdown(names, value="Trouser", label="Path from")
        class_b = gr.Dropdown(names, value="Bag", label="to")
        button = gr.Button("Compare", variant="primary")
    outputs = []
    with gr.Row():
        for kind in ("Autoencoder (no KL)", "VAE (with KL)"):
            with gr.Column():
                outputs += [
                    gr.Image(
                        label=f"{kind}: latent map",
                        format="png",
                        interactive=False,
                        height=460,
                        elem_id=f"map-{kind[:3].lower()}",
                    ),  # fmt: skip
                    pixels(f"random-{kind[:3].lower()}", f"{kind}: the same 16 draws z ~ N(0, I), decoded", height=130),
                    pixels(f"path-{kind[:3].lower()}", f"{kind}: the path between the two images", height=80),
                ]
    text = gr.Markdown()
    gr.on([button.click, tab.select], lab.compare, [seed, class_a, class_b], [*outputs, text], api_name="compare")


def collapse_tab(lab: Lab, tab: gr.Tab) -> None:
    """Its figures are drawn when the tab opens."""
    gr.Markdown(
        "The same VAE (784-256-16 MLP, Fashion-MNIST, 10 epochs) trained with the KL term weighted by beta. As beta "
        "grows, the KL is cheaper to remove than the reconstruction error is to bear: dimension after dimension "
        "**collapses** onto the prior (KL 0: q(z_d|x) = N(0, 1) whatever x, and the decoder learns to ignore it), "
        "reconstructions turn into class averages, then into one average garment. The library's remedies: "
        "`--free-bits` (a KL floor per dimension, so none is pushed all the way to the prior) and `--kl-warmup` "
        "(start with beta = 0, so the decoder learns to use z before the KL pulls on it)."
    )
    with gr.Row():
        seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed of the prior samples")
        button = gr.Button("Show", variant="primary")
    outputs: list[Any] = []
    for beta in lab.betas:
        tag = beta.replace(".", "_")
        with gr.Row(equal_height=True):
            with gr.Column(scale=1):
                outputs.append(gr.Markdown(f"**beta = {beta}**"))
            with gr.Column(scale=3):
                outputs.append(pixels(f"collapse-recon-{tag}", "test images (top) and reconstructions", 110))
            with gr.Column(scale=3):
                outputs.append(pixels(f"collapse-samples-{tag}", "prior samples", 60))
            with gr.Column(scale=2):
                outputs.append(chart("KL per dimension"))
    gr.on([button.click, tab.select], lab.collapse, [seed], outputs, api_name="collapse")


def remedies_tab(remedies: Remedies, tab: gr.Tab) -> None:
    """Its figures are drawn when the tab opens (the first time takes a few seconds: the sharpness and gap figures
    are measured once)."""
    gr.Markdown(
        "Where the textbook VAE falls short (blurry images, prior draws that land between the codes, unused codes), "
        "the field reaches for other models. Here they meet the same eight Fashion-MNIST test images: the textbook "
        "VAE (784-400-20 MLP), a hierarchical VAE, the same with an autoregressive decoder, and a VQ-VAE, each "
        "trained on the full training split."
    )
    with gr.Row():
        seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed of the samples")
        button = gr.Button("Show", variant="primary")
    outputs: list[Any] = []
    for role, title in ROLES.items():
        with gr.Row(equal_height=True):
            with gr.Column(scale=1):
                gr.Markdown(f"**{title}**")
            with gr.Column(scale=3):
                outputs.append(pixels(f"remedy-recon-{role}", "test images (top) and reconstructions", 110))
            with gr.Column(scale=3):
                outputs.append(pixels(f"remedy-samples-{role}", "new images it draws", 60))
    outputs.append(gr.Markdown(elem_id="remedies-table"))
    gr.on([button.click, tab.select], remedies.remedies, [seed], outputs, api_name="remedies")


def live_tab(live: LiveTraining) -> tuple[Any, gr.Textbox]:
    """Returns the training event (for the page to load the trained model) and the trained model's name."""
    gr.Markdown(
        f"Train a small VAE (784-256-z MLP) on 4,000 Fashion-MNIST images right here, within {MAX_BUDGET_S} s of "
        "CPU. Watch the loss fall and the classes sort themselves on the latent map; when it is done it becomes "
        "the model in use in every tab. One training runs at a time: others wait in the queue (their place shows)."
    )
    with gr.Row():
        latent_dim = gr.Slider(2, MAX_LATENT, 2, step=1, label="Latent dimensions")
        beta = gr.Slider(0.0, 8.0, 1.0, step=0.1, label="beta (KL weight)")
        epochs = gr.Slider(1, MAX_EPOCHS, 10, step=1, label="Epochs")
        likelihood = gr.Radio(["bernoulli", "gaussian"], value="bernoulli", label="Likelihood p(x|z)")
        budget = gr.Slider(5, MAX_BUDGET_S, 30, step=5, label="Time budget (s)")
    with gr.Row():
        start = gr.Button("Train", variant="primary")
        stop = gr.Button("Stop")
    status = gr.Markdown()
    with gr.Row():
        curve = gr.LinePlot(x="epoch", y="-ELBO (nats)", label="Loss (-ELBO per image)", height=360)
        the_map = gr.Image(label="Latent space as it trains", format="png", interactive=False, height=420,
                           elem_id="live-map")  # fmt: skip
    zipped = gr.File(label="The trained model (a save_pretrained folder, zipped)")
    name = gr.Textbox(visible=False, label="Trained model")
    event = start.click(live.train, [latent_dim, beta, epochs, likelihood, budget],
                        [status, curve, the_map, zipped, name], api_name="train_live",
                        concurrency_limit=1, concurrency_id="live-training")  # fmt: skip
    stop.click(None, cancels=[event])
    return event, name
