"""``python -m vae_hub ...`` is the ``vae-hub`` command."""

import sys

from .cli import main

sys.exit(main())
