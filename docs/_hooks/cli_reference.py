"""MkDocs hook: the CLI reference page is the ``--help`` of every ``vae-hub`` command, generated from the parsers
at build time, so it cannot drift from the code."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- cli-reference -->"
WIDTH = "80"  # argparse wraps help at $COLUMNS; 80 fits the page's code column


def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub-)sub-command parser below ``parser``, depth first, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action._name_parser_map.values():
                yield child.prog, child
                yield from subcommands(child)


def cli_reference() -> str:
    from vae_hub.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        top = build_parser()
        parts = [f"## `vae-hub`\n\n```text\n{top.format_help()}```\n"]
        for prog, child in subcommands(top):
            anchor = prog.replace(" ", "-")
            parts.append(f"## `{prog}` {{#{anchor}}}\n\n```text\n{child.format_help()}```\n")
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
