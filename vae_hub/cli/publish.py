"""Push a trained model folder (config, weights, card, metrics, pictures) to the Hugging Face Hub.

Example: vae-hub publish runs/vae your-name/your-vae [--private] [--message "..."]
The token comes from --token, HF_TOKEN or the login cache (hf auth login). Training checkpoints stay local.
"""

from __future__ import annotations

import argparse

from ..errors import PublishError
from ..hub.publish import publish
from .options import error


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="a model folder written by vae-hub train or save_pretrained")
    p.add_argument("repo_id", help="the Hub repo to push to (user/name); created if it does not exist")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--message", default="Upload VAE with vae-hub", help="commit message")
    p.add_argument("--token", default=None, help="Hugging Face token (default: HF_TOKEN or the login cache)")


def run(args: argparse.Namespace) -> int:
    try:
        url = publish(args.folder, args.repo_id, private=args.private, commit_message=args.message, token=args.token)
    except PublishError as e:
        error(str(e))
        error(f"the folder {args.folder} is unchanged; fix the problem and run this command again")
        return 1
    print(f"pushed {args.folder} to {url}")
    return 0
