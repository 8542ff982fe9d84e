"""`vae-hub publish`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import main

sys.exit(main(["publish", *sys.argv[1:]]))
