"""`vae-hub sample`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import main

sys.exit(main(["sample", *sys.argv[1:]]))
