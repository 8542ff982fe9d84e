"""`vae-hub publish`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import entry

entry(["publish", *sys.argv[1:]])
