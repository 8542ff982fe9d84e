"""`vae-hub sample`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import entry

entry(["sample", *sys.argv[1:]])
