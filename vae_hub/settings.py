"""Settings as dataclass fields that carry their command-line help: one declaration per setting."""

from __future__ import annotations

from dataclasses import Field, field
from typing import Any


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    metavar: str = "",
    **roles: bool,
) -> Any:
    """A dataclass field with what its flag needs: help, choices, and a flag name and metavar if not derived.

    ``roles`` are facts about the setting that code elsewhere asks for by name (e.g. ``decoded=True``: the decoded
    images depend on it), so that no list of settings is written twice.
    """
    metadata = {"help": help, "choices": choices, "flag": flag, "metavar": metavar, **roles}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def flag_name(f: Field) -> str:
    """The command-line flag of a dataclass field: its ``flag`` metadata, else ``--field-name``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def with_role(cls: type, role: str) -> tuple[str, ...]:
    """The names of ``cls``'s fields that have ``role`` (see ``option``)."""
    return tuple(f.name for f in cls.__dataclass_fields__.values() if f.metadata.get(role))
