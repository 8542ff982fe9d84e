"""How much a model from outside may ask for: checked before anything is downloaded or allocated."""

from __future__ import annotations

import os

from .errors import CheckpointError

MAX_MODEL_ENV = "VAE_HUB_MAX_MODEL_MB"
DEFAULT_MAX_MODEL_MB = 2048  # the library's default: far above any VAE here (the bundled ones are ~6 MB)
MAX_CONFIG_BYTES = 64 * 2**10  # a config.json is a few hundred bytes
MAX_TEXT_BYTES = 2**20  # a model card or metrics.json
MAX_NAME_CHARS = 4096  # PATH_MAX on Linux; a Hub repo id is at most 96 characters
MAX_IMAGE_SIDE = 8192  # an image side a model or --image-size may ask for: a structural bound, far above use


def max_model_bytes(default_mb: int = DEFAULT_MAX_MODEL_MB) -> int:
    """The largest model (bytes of weights in memory) to load: ``VAE_HUB_MAX_MODEL_MB`` if set, else the default."""
    text = os.environ.get(MAX_MODEL_ENV, "").strip()
    if not text:
        return default_mb * 2**20
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = -1.0
    if not 0 < megabytes < 2**40:
        raise CheckpointError(f"{MAX_MODEL_ENV} must be a positive number of megabytes, got {text!r}")
    return int(megabytes * 2**20)


def size_text(nbytes: float) -> str:
    """Bytes in MB (binary, as the limit is set), e.g. '12,000.0 MB'; in KB below a megabyte."""
    return f"{nbytes / 2**20:,.1f} MB" if nbytes >= 2**20 else f"{nbytes / 2**10:,.1f} KB"
