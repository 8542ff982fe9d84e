"""`vae-hub train`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
