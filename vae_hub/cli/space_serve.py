"""Serve the Gradio Space (generate, reconstruct, interpolate, explore) for your models, in a browser.

``vae-hub space MODEL...`` is this command too.

Examples: vae-hub space serve runs/vae                   # one model folder written by vae-hub train
          vae-hub space serve space/models               # a folder of model folders (the repository's bundled ones)
          vae-hub space serve user/my-vae --port 7861     # a Hub repo id (downloaded when online)
The first model is shown first; any other vae-hub model can be typed into the page. Needs the space extra:
pip install 'vae-hub[space]'.
"""

from __future__ import annotations

import argparse
import importlib.util
import os

from .options import error


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL", help="model folders, folders of them, or Hub repo ids")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="address to serve on")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), help="port")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        error("the Space needs Gradio: pip install 'vae-hub[space]'")
        return 2
    from ..errors import ModelLoadError
    from ..space import build_demo, find_models, launch, read_lab

    try:  # a folder with a lab.json (like space/models) also gets the lab's comparison tabs
        labs = [lab for lab in map(read_lab, args.models) if lab is not None]
        demo = build_demo(find_models(args.models), lab=labs[0] if labs else None)
    except ModelLoadError as e:
        error(str(e))
        return 2
    launch(demo, host=args.host, port=args.port)
    return 0
