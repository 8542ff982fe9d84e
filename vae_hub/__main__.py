"""``python -m vae_hub ...`` is the ``vae-hub`` command."""

from .cli import entry

entry()
