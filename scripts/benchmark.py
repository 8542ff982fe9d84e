"""`vae-hub benchmark`, for a checkout (installed: the `vae-hub` command)."""

import sys

from vae_hub.cli import entry

entry(["benchmark", *sys.argv[1:]])
