"""`vae-hub train`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import entry

entry(["train", *sys.argv[1:]])
