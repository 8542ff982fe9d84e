"""The Gradio Space: sample, reconstruct, interpolate and explore vae-hub models in a browser.

``build_demo({"name": "folder or user/repo", ...})`` returns the page; ``launch(demo)`` serves it. ``vae-hub space``
and the Space folder's ``app.py`` are both this. Needs the ``space`` extra (``pip install 'vae-hub[space]'``).
"""

from .app import CSS, build_demo, launch
from .deploy.folder import read_models
from .lab.models import LabModels, read_lab
from .model_store import find_models

__all__ = ["CSS", "LabModels", "build_demo", "find_models", "launch", "read_lab", "read_models"]
