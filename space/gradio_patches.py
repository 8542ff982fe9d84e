"""A workaround for a Gradio race, applied by the Space at start-up.

Gradio stores each output image at ``<cache>/<hash of its bytes>/image.png`` and rewrites that file for every
request, even when it exists. Two requests with the same output (the same drawing reconstructed twice, the same
seed) then truncate the file while it is being served, and the download fails with "Too little data for declared
Content-Length". Writing to a temporary file and renaming it keeps every reader on a complete file.
"""

from __future__ import annotations

from pathlib import Path

from gradio import processing_utils
from PIL import Image

from vae_hub.hub import atomic_write


def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """``gradio.processing_utils.save_pil_to_cache``, with an atomic write."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if not path.exists():
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return str(path)


def apply() -> None:
    processing_utils.save_pil_to_cache = save_pil_to_cache
