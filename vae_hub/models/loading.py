"""Load any vae-hub model by the class name its ``config.json`` records (a VAE or a VQ-VAE)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from ..hub import save_load as hub
from .base import BaseVAE
from .vqvae import VQVAE


def from_pretrained(name_or_path: str | Path, **kwargs: Any) -> BaseVAE | VQVAE:
    """Load any vae-hub model from a local folder or a Hub repo id, whichever class saved it.

    Args:
        name_or_path: A local folder or a Hub repo id (``"user/name"``).
        **kwargs: ``revision``, ``token``, ``cache_dir``, ``force_download``, ``local_files_only``,
            ``map_location``, ``max_bytes``: as for ``BaseVAE.from_pretrained``.

    Returns:
        The model (a ``VariationalAutoencoder``, a ``ConvVAE``, a ``HierarchicalVAE``, a ``VQVAE``), in eval mode;
        ``require_vae`` checks that it is a VAE where one is needed.

    Raises:
        CheckpointError: For any problem, naming it.
    """
    return cast(BaseVAE | VQVAE, hub.load_model(name_or_path, **kwargs))
