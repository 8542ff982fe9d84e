"""vae-hub Space: sample, reconstruct, interpolate and explore a Variational Autoencoder in the browser.

Hugging Face Spaces runs this file; locally, ``python space/app.py`` (port from GRADIO_SERVER_PORT, default 7860;
host 127.0.0.1 unless GRADIO_SERVER_NAME says otherwise). The page itself is ``vae_hub.space``; this file only
names the bundled models. Every feature is also an API endpoint for ``gradio_client``: /generate, /reconstruct,
/interpolate, /decode, /load_model, /latent_map, /decode_point, /compare, /collapse and /train_live.
"""

from pathlib import Path

from vae_hub import space

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODELS = space.find_models([str(MODELS_DIR)])  # models/order.json: the models listed, the first shown first
LAB = space.read_lab(MODELS_DIR)  # models/lab.json: the twins of the lab's tabs
CSS = space.CSS


def build_demo():  # -> gr.Blocks (gradio is imported by vae_hub.space)
    return space.build_demo(MODELS, lab=LAB)


if __name__ == "__main__":
    space.launch(build_demo())
