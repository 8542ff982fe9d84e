"""A workaround for a Gradio race, and each distinct picture encoded once; applied by the Space at start-up.

Gradio stores each output image at ``<cache>/<hash of its bytes>/image.png`` and rewrites that file for every
request, even when it exists. Two requests with the same output (the same drawing reconstructed twice, the same
seed) then truncate the file while it is being served, and the download fails with "Too little data for declared
Content-Length". Writing to a temporary file and renaming it keeps every reader on a complete file. An existing
file is touched instead, as Gradio does for the files it copies, so that ``delete_cache`` ages it from its last use.
A picture handed out before (the page's first samples, an example reconstructed again) is found by a hash of its
pixels instead of being encoded and hashed as a PNG again.

The patch replaces Gradio's function whole, so it is tied to the Gradio source it was written against: ``apply``
refuses to patch a function whose source differs (a newer Gradio), instead of silently changing its behaviour.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import threading
from collections import OrderedDict
from pathlib import Path

import gradio
from gradio import processing_utils
from PIL import Image

from ..errors import GradioChangedError
from ..fileio import atomic_write

# sha256 of inspect.getsource(processing_utils.save_pil_to_cache) in the Gradio releases this patch was checked against
KNOWN_SOURCES = {"6.31.0": "ea8f5a3ffa0371a17de649d654e2ddda471362b6e0301e8c323a60009af94468"}


def source_digest(function: object) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


MAX_REMEMBERED = 4096  # pictures whose file is remembered by their pixels (a path each)
_saved: OrderedDict[tuple[str, ...], str] = OrderedDict()
_saved_lock = threading.Lock()  # requests run in several worker threads


def pixels_key(img: Image.Image, cache_dir: str, name: str, format: str) -> tuple[str, ...]:
    digest = hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest()
    return (digest, img.mode, f"{img.width}x{img.height}", cache_dir, name, format)


def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """``gradio.processing_utils.save_pil_to_cache``, with an atomic write; a picture seen before is not re-encoded."""
    key = pixels_key(img, cache_dir, name, format)
    with _saved_lock:
        known = _saved.get(key)
        if known is not None:
            _saved.move_to_end(key)
    if known is not None:
        try:
            os.utime(known)  # handed out again: Gradio's delete_cache ages files by ctime, so it counts from now
            return known
        except FileNotFoundError:  # deleted by delete_cache since: written again below
            pass
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    try:
        os.utime(path)
    except FileNotFoundError:
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    with _saved_lock:
        _saved[key] = str(path)
        while len(_saved) > MAX_REMEMBERED:
            _saved.popitem(last=False)
    return str(path)


def apply() -> None:
    """Patch Gradio, once; raises ``GradioChangedError`` if its function is not a known version."""
    original = processing_utils.save_pil_to_cache
    if original is save_pil_to_cache:
        return
    if source_digest(original) not in KNOWN_SOURCES.values():
        raise GradioChangedError(
            f"gradio {gradio.__version__} has a processing_utils.save_pil_to_cache that vae-hub's patch "
            f"(vae_hub/space/gradio_patches.py) was not written for (known: gradio {', '.join(KNOWN_SOURCES)}); "
            "check whether the race is fixed upstream, then update the patch and KNOWN_SOURCES"
        )
    processing_utils.save_pil_to_cache = save_pil_to_cache
