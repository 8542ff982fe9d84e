"""What a model's ``config.json`` may hold: a type and a range per field, checked before anything is built.

A ``config.json`` comes from outside (a Hub repo, a folder someone sent), so its values are input: ``1e30``, ``NaN``,
``true``, a list or an object where an integer belongs must be refused by name, not reach ``nn.Linear``. The
ranges are structural sanity bounds, deliberately loose; what a model may cost in memory is bounded separately,
by its parameter count (see ``vae_hub.hub``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FieldError


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: messages quote what was sent, never megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


@dataclass(frozen=True)
class Int:
    """A whole number in [lo, hi]; booleans and floats (even 400.0) are refused."""

    lo: int
    hi: int

    def check(self, name: str, value: Any) -> int:
        if type(value) is not int or not self.lo <= value <= self.hi:
            got = shown(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else type_name(value)
            raise FieldError(f"{name} must be an integer in [{self.lo}, {self.hi}], got {got}")
        return value


@dataclass(frozen=True)
class Float:
    """A finite number in (lo, hi]; integers are accepted, booleans and NaN/inf are not."""

    lo: float
    hi: float

    def check(self, name: str, value: Any) -> float:
        ok = type(value) in (int, float) and math.isfinite(value) and self.lo < value <= self.hi
        if not ok:
            got = shown(value) if type(value) in (int, float) else type_name(value)
            raise FieldError(f"{name} must be a number in ({self.lo:g}, {self.hi:g}], got {got}")
        return value


@dataclass(frozen=True)
class Bool:
    def check(self, name: str, value: Any) -> bool:
        if type(value) is not bool:
            raise FieldError(f"{name} must be true or false, got {type_name(value)}")
        return value


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def check(self, name: str, value: Any) -> str:
        if type(value) is not str or value not in self.options:
            got = shown(value) if isinstance(value, str) else type_name(value)
            raise FieldError(f"{name} must be one of {', '.join(map(repr, self.options))}, got {got}")
        return value


@dataclass(frozen=True)
class ImageShape:
    """Three integers (C, H, W); ``optional`` also accepts null (the model infers it)."""

    max_channels: int
    max_side: int
    optional: bool = False

    def check(self, name: str, value: Any) -> list[int] | None:
        if value is None and self.optional:
            return None
        ok = (
            type(value) is list
            and len(value) == 3
            and all(type(v) is int for v in value)
            and 1 <= value[0] <= self.max_channels
            and all(1 <= v <= self.max_side for v in value[1:])
        )
        if not ok:
            expected = f"[C, H, W] with C in [1, {self.max_channels}] and H, W in [1, {self.max_side}]"
            got = shown(value) if type(value) is list else type_name(value)
            raise FieldError(f"{name} must be {expected}{' or null' if self.optional else ''}, got {got}")
        return value


@dataclass(frozen=True)
class Names:
    """A list of at most ``max_items`` strings of at most ``max_chars`` characters each, or null."""

    max_items: int
    max_chars: int = 200

    def check(self, name: str, value: Any) -> list[str] | None:
        if value is None:
            return None
        ok = (
            type(value) is list
            and len(value) <= self.max_items
            and all(type(v) is str and 0 < len(v) <= self.max_chars for v in value)
        )
        if not ok:
            got = f"a list of {len(value)}" if type(value) is list else type_name(value)
            raise FieldError(
                f"{name} must be null or a list of at most {self.max_items} names of 1 to {self.max_chars} "
                f"characters, got {got}"
            )
        return value


Rule = Int | Float | Bool | Choice | ImageShape | Names


def check_fields(rules: Mapping[str, Rule], config: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments in ``config``, each checked by its rule; raises ``FieldError``.

    Keys without a rule are not returned (the loader warns about them); a missing key takes the default.
    """
    return {name: rule.check(name, config[name]) for name, rule in rules.items() if name in config}
