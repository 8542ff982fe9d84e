"""`vae-hub evaluate`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import entry

entry(["evaluate", *sys.argv[1:]])
