"""Serve the Gradio Space (generate, reconstruct, interpolate, explore) for your models, or deploy it to the Hub.

Examples: vae-hub space runs/vae                      # serve one model folder written by vae-hub train
          vae-hub space space/models                  # a folder of model folders (the repository's bundled ones)
          vae-hub space serve user/my-vae --port 7861 # a Hub repo id (downloaded when online); "serve" is the default
          vae-hub space deploy me/vae-demo --model runs/vae  # a Hugging Face Space (vae-hub space deploy -h)
Needs the space extra: pip install 'vae-hub[space]'.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from .options import HelpFormatter

SUBCOMMANDS = {
    "serve": "serve the Space on this machine (the default)",
    "deploy": "build a Hugging Face Space and upload it",
}


class DefaultSubcommand(argparse._SubParsersAction):
    """Sub-commands where a first word that names none is the default one's first argument (``vae-hub space MODEL``)."""

    default_name = "serve"

    class _AnyWord(dict):
        """The sub-commands, where every first word passes argparse's choice check (``__call__`` sorts it out)."""

        def __contains__(self, word: object) -> bool:
            return True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = self._AnyWord()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        values = list(values)
        if not values or values[0] not in self._name_parser_map:
            values = [self.default_name, *values]
        super().__call__(parser, namespace, values, option_string)


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="space_command", metavar="{serve,deploy}", action=DefaultSubcommand, required=True)
    for name, summary in SUBCOMMANDS.items():
        module = importlib.import_module(f"{__package__}.space_{name}")
        q = sub.add_parser(name, help=summary, description=module.__doc__, formatter_class=HelpFormatter,
                           prog=f"vae-hub space {name}")  # fmt: skip
        module.configure(q)
        q.set_defaults(space_run=module.run)


def run(args: argparse.Namespace) -> int:
    return args.space_run(args)
