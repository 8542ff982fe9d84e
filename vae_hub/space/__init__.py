"""The Gradio Space: sample, reconstruct, interpolate and explore vae-hub models in a browser.

``build_demo({"name": "folder or user/repo", ...})`` returns the page; ``launch(demo)`` serves it. ``vae-hub space``
and the Space folder's ``app.py`` are both this. Needs the ``space`` extra (``pip install 'vae-hub[space]'``).
Names are imported when first used, so that a process needing one module of the Space (the live training's worker)
does not load Gradio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import CSS, build_demo, launch
    from .deploy.folder import read_models
    from .lab.models import LabModels, read_lab
    from .model_store import find_models

WHERE = {"CSS": ".app", "build_demo": ".app", "launch": ".app", "read_models": ".deploy.folder",
         "LabModels": ".lab.models", "read_lab": ".lab.models", "find_models": ".model_store"}  # fmt: skip
__all__ = ["CSS", "LabModels", "build_demo", "find_models", "launch", "read_lab", "read_models"]


def __getattr__(name: str) -> Any:
    if name not in WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(WHERE[name], __name__), name)
