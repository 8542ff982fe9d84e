"""Test helpers: running the scripts as a user would, launching the Space, a free port."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from vae_hub.cli.benchmark.timing import free_port

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "space"


def run_script(name: str, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=ROOT,
    )


def tiny_train_args(data_dir: Path, out_dir: Path, *extra: str) -> list[str]:
    return [
        "--dataset", "mnist", "--data-dir", str(data_dir), "--output-dir", str(out_dir), "--cache-dir",
        str(out_dir.parent / "cache"), "--no-download", "--no-progress", "--hidden-dim", "32", "--latent-dim", "4",
        "--batch-size", "32", "--eval-k", "8", *extra,
    ]  # fmt: skip


def import_app() -> ModuleType:
    """space/app.py as a module (it is a script on Spaces, not part of a package)."""
    if "vae_hub_space_app" in sys.modules:
        return sys.modules["vae_hub_space_app"]
    spec = importlib.util.spec_from_file_location("vae_hub_space_app", SPACE / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def launch(mcp_server: bool = False) -> tuple[ModuleType, object, str]:
    """(the app module, the running Blocks, its URL); with ``mcp_server`` it also serves its tools over MCP."""
    app = import_app()
    demo = app.build_demo()
    from vae_hub.space.app import server_options

    demo.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
        mcp_server=mcp_server, **server_options(demo),
    )  # fmt: skip
    return app, demo, demo.local_url
