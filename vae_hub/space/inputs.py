"""What the Space's handlers accept: every value an API client sends is checked, and bad ones become a gr.Error."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

import gradio as gr
import numpy as np
import torch

from ..errors import ImageInputError
from ..images import open_image, prepare_image

log = logging.getLogger("vae-hub-space")


class Rejected(gr.Error):
    """Bad input: shown in the page, logged as one line by the handler (no traceback: nothing broke)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, print_exception=False)


def log_rejected(endpoint: str, message: str) -> None:
    log.info("rejected %s: %s", endpoint, message if len(message) <= 500 else message[:480] + " ...")


def as_int(value: Any, name: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi] from an API value, or a gr.Error that says what was expected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Rejected(f"{name} must be a whole number between {lo} and {hi}, got {value!r}")
    if value != int(value) or not lo <= value <= hi:
        raise Rejected(f"{name} must be a whole number between {lo} and {hi}, got {value!r}")
    return int(value)


def as_float(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise Rejected(f"{name} must be a number between {lo} and {hi}, got {value!r}")
    return float(value)


def as_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise Rejected(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def as_latent(text: Any, latent_dim: int) -> torch.Tensor:
    """A (1, latent_dim) tensor from comma-separated numbers."""
    if not isinstance(text, str):
        raise Rejected(f"z must be a string of {latent_dim} comma-separated numbers, got {type(text).__name__}")
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise Rejected(f"z must be {latent_dim} comma-separated numbers, got {text[:80]!r}") from None
    if len(values) != latent_dim:
        raise Rejected(f"z must hold {latent_dim} numbers for this model (its latent size), got {len(values)}")
    if not all(math.isfinite(v) and abs(v) <= 10 for v in values):
        raise Rejected("each value of z must be a finite number between -10 and 10")
    return torch.tensor([values])


def drawing_of(value: Any, what: str) -> np.ndarray | None:
    """The composite picture of a Sketchpad value, or None when nothing was drawn."""
    if value is None:
        return None
    if not isinstance(value, dict) or "composite" not in value:
        raise Rejected(f"{what} must be a Sketchpad value with a 'composite' image, got {type(value).__name__}")
    return value["composite"]


def as_picture(drawing: Any, upload: Any, what: str, image_shape: tuple[int, int, int], margin: float) -> torch.Tensor:
    """Model input (1, C, H, W) from an uploaded file (preferred when given) or a drawing."""
    if upload is not None and not isinstance(upload, str):
        raise Rejected(f"{what}: expected an uploaded image file, got {type(upload).__name__}")
    drawn = drawing_of(drawing, what) if upload is None else None
    if upload is None and drawn is None:
        raise Rejected(f"{what}: the canvas is empty. Pick the brush and draw, or upload an image")
    try:
        image = open_image(upload) if upload is not None else drawn
        return prepare_image(image, image_shape, margin=margin)
    except ImageInputError as e:
        raise Rejected(f"{what}: {e}") from None


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` (the handler of endpoint ``/<its name>``) under inference mode.

    Bad input becomes a gr.Error with its message and one log line; anything else logs its traceback.
    """
    endpoint = f"/{fn.__name__}"

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        try:
            with torch.inference_mode():
                return fn(*args)
        except gr.Error as e:
            log_rejected(endpoint, str(e.message))
            e.print_exception = False
            raise
        except (ImageInputError, ValueError, TypeError) as e:
            log_rejected(endpoint, str(e))
            raise Rejected(str(e)) from None
        except Exception:
            log.exception("unexpected error in %s", endpoint)
            raise Rejected("something went wrong on the server (it is logged); please try again") from None

    return wrapper
