"""Launching the Space in the test process, on 127.0.0.1 and a free port."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "space"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def import_app() -> ModuleType:
    """space/app.py as a module (it is a script on Spaces, not part of a package)."""
    if "vae_hub_space_app" in sys.modules:
        return sys.modules["vae_hub_space_app"]
    spec = importlib.util.spec_from_file_location("vae_hub_space_app", SPACE / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def launch() -> tuple[ModuleType, object, str]:
    """(the app module, the running Blocks, its URL)."""
    app = import_app()
    demo = app.build_demo()
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, css=app.CSS)
    return app, demo, demo.local_url
