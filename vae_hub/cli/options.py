"""Command-line flags from a dataclass's fields, and ``--help`` that shows every default."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from dataclasses import MISSING, fields
from typing import Any

from ..settings import flag_name


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends each option's default (flags and empty defaults excepted)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.nargs != 0 and action.default not in (None, "", [], argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=HelpFormatter)


def _scalar_type(hint: Any) -> Any:
    """``int`` from ``int | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint


def add_dataclass_options(p: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of ``cls``: ``--field-name``, with the field's help, choices and default.

    A bool field that defaults to False is a switch; one that defaults to True is turned off by its ``flag``
    (e.g. ``--no-download``); a list field is a repeatable flag.
    """
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        meta = f.metadata
        flag = flag_name(f)
        default = f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]
        kind = _scalar_type(hints[f.name])
        kwargs: dict[str, Any] = {"dest": f.name, "help": meta.get("help"), "default": default}
        if kind is bool:
            kwargs["action"] = "store_false" if default else "store_true"
        elif typing.get_origin(kind) is list:
            kwargs["action"] = "append"
        else:
            kwargs["type"] = kind
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
            if meta.get("choices"):
                kwargs["choices"] = list(meta["choices"])
        p.add_argument(flag, **kwargs)


def dataclass_from_args(cls: type, args: argparse.Namespace) -> Any:
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
