"""Gradio inputs that answer malformed payloads with a clear ``gr.Error`` instead of a bare "Error".

Gradio reports an exception raised while it validates or preprocesses an input as a bare "Error" unless it is a
``gr.Error``. API clients can send anything, so each input of the Space wraps its own payload validation and
``preprocess``: a failure becomes a message that names the input and what it expects. (The instance is wrapped,
not subclassed: Gradio writes a ``.pyi`` stub next to any module that defines a component class.)
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

import gradio as gr

from ..images import MAX_SIDE, MIN_SIDE
from .inputs import Rejected, log_rejected

C = TypeVar("C", bound=gr.components.Component)

IMAGE_FILE = f"a PNG, JPEG, WebP, BMP or GIF picture with each side between {MIN_SIDE} and {MAX_SIDE} pixels"


def expected_value(component: gr.components.Component) -> str:
    """What a component accepts, in words."""
    if isinstance(component, (gr.Slider, gr.Number)):
        return f"a number between {component.minimum} and {component.maximum}"
    if isinstance(component, gr.Radio):
        return "one of " + ", ".join(repr(value) for _, value in component.choices)
    if isinstance(component, gr.ImageEditor):
        return f"a drawing (a dict of background, layers and composite images), each {IMAGE_FILE}"
    if isinstance(component, gr.Image):
        return IMAGE_FILE
    return "a valid value"


def describe(payload: Any) -> str:
    """A short description of a payload for an error message, without server paths."""
    name = getattr(payload, "orig_name", None) or (payload.get("orig_name") if isinstance(payload, dict) else None)
    if isinstance(name, str):
        return f"the file {name!r}, which is not one"
    if hasattr(payload, "composite") or (isinstance(payload, dict) and "composite" in payload):
        return "a drawing whose images cannot be read"
    text = repr(payload)
    return text if len(text) <= 60 else f"a {type(payload).__name__} that is not one"


def clear_errors(component: C, endpoints: str = "") -> C:
    """Make ``component.preprocess`` raise only ``gr.Error``s that start with the component's label.

    ``endpoints``: the API endpoints taking this input, named in the one log line of each rejected value.
    """
    preprocess = component.preprocess
    label = component.label

    def rejected(message: str) -> Rejected:
        log_rejected(endpoints or "an input", message)
        return Rejected(message)

    @functools.wraps(preprocess)
    def checked(payload: Any) -> Any:
        try:
            return preprocess(payload)
        except gr.Error as e:
            raise rejected(f"{label}: {e.message}") from None
        except Exception:  # PIL, pydantic and float() raise many kinds; none of their messages belong in the page
            raise rejected(f"{label}: expected {expected_value(component)}; got {describe(payload)}") from None

    component.preprocess = checked  # type: ignore[method-assign]
    model = getattr(component, "data_model", None)
    if model is not None:  # Gradio validates file-like payloads against it before preprocess

        def model_validate(cls: type, obj: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return model.model_validate(obj, *args, **kwargs)
            except Exception:
                raise rejected(f"{label}: expected {expected_value(component)}; got {describe(obj)}") from None

        component.data_model = type(model.__name__, (model,), {"model_validate": classmethod(model_validate)})
    return component
