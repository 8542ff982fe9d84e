"""The ``vae-hub`` command: train, evaluate, sample, publish, serve or deploy the Space, benchmark.

Each subcommand is a module of this package with ``configure(parser)`` (its flags) and ``run(args) -> exit code``;
``space`` has sub-commands of its own (``serve``, the default, and ``deploy``).

Exit codes: 0 done; 1 the Hub or the network failed (nothing local was lost: rerun); 2 bad input (a flag, a model,
data), reported as one ``error:`` line naming what was wrong; 3 training finished but the push to the Hub failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from typing import NoReturn

from .. import __version__
from ..errors import VaeHubError
from .options import error, parser

COMMANDS = {
    "train": "train a VAE; the output folder is a Hub model repo",
    "evaluate": "ELBO, importance-sampled NLL and active units on a test split",
    "sample": "a grid of samples from a model's prior",
    "publish": "push a trained model folder to the Hugging Face Hub",
    "space": "serve the Gradio Space for your models (vae-hub space MODEL...), or deploy it (vae-hub space deploy)",
    "benchmark": "time training, inference, evaluation and the Space on this machine",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``vae-hub`` parser with every subcommand (the CLI reference in the docs is generated from it).

    With ``command``, only that subcommand's module is imported and its flags added (the others are listed by
    name): ``benchmark``'s imports alone take ~0.1 s of every ``vae-hub train``.
    """
    top = parser("vae-hub", "Variational Autoencoders: train, evaluate, sample, publish to the Hub, serve a Space.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        if command not in (None, name):
            sub.add_parser(name, help=summary)
            continue
        module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
        prog = f"vae-hub {name}"
        p = sub.add_parser(
            name, help=summary, description=module.__doc__, formatter_class=top.formatter_class, prog=prog
        )
        module.configure(p)
        p.set_defaults(run=module.run)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run ``vae-hub`` with ``argv`` (default: the command line); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv[:1] and argv[0] in COMMANDS else None).parse_args(argv)
    try:
        return args.run(args)
    except VaeHubError as e:
        error(str(e))
        return e.exit_code


def entry(argv: list[str] | None = None) -> NoReturn:
    """The console command (``vae-hub``, ``python -m vae_hub``): ``main``, then a quick exit.

    Python's own shutdown takes ~0.7 s once torch is imported (the final garbage collection over its objects,
    then module teardown): 4% of training the MLP VAE. Every command has closed what it writes when ``main``
    returns, so after flushing logging and the standard streams the process ends at once. An exception still
    exits the usual way, with its traceback. ``train`` and ``evaluate`` first set up their process (their
    module's ``prepare_process``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["train"], ["evaluate"]):  # a process that computes and exits: settings a library must not impose
        importlib.import_module(f"{__name__}.{argv[0]}").prepare_process()
    code = main(argv)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`vae-hub ... | head`): nothing to lose
            stream.flush()
    os._exit(code if isinstance(code, int) else 0)
