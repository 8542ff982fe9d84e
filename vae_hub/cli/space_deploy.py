"""Build a Hugging Face Space for your models and upload it: `vae-hub space deploy USER/SPACE --model ...`.

Examples: vae-hub space deploy me/vae-demo --model me/my-vae                 # a model on the Hub, by repo id
          vae-hub space deploy me/vae-demo --model runs/vae --private         # a local folder, uploaded with it
          vae-hub space deploy me/vae-demo --model space/models --dry-run --folder /tmp/vae-demo
The Space holds app.py, the vae_hub package, requirements.txt, README.md (its card) and models.json; local models
are copied into models/ after they load, repo ids are downloaded by the Space when it starts. The token comes from
--token, HF_TOKEN or the login cache (hf auth login).
"""

from __future__ import annotations

import argparse
import importlib.util

from .options import error


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("space_id", metavar="USER/SPACE", help="the Space repo to create or update")
    p.add_argument(
        "--model", action="append", default=[], metavar="MODEL", required=True,
        help="a Hub repo id, a model folder or a folder of them (repeat for several; the first is shown first)",
    )  # fmt: skip
    p.add_argument("--private", action="store_true", help="create the Space as private")
    p.add_argument("--dry-run", action="store_true", help="write the Space folder (--folder) and upload nothing")
    p.add_argument(
        "--folder", default=None, help="where to write the Space folder (new or empty; required with --dry-run)"
    )
    p.add_argument("--title", default=None, help="the Space's title (default: its name)")
    p.add_argument("--token", default=None, help="Hugging Face token (default: HF_TOKEN or the login cache)")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        error("deploying a Space needs Gradio (its version goes into the Space): pip install 'vae-hub[space]'")
        return 2
    if args.dry_run and args.folder is None:
        error("--dry-run writes the Space folder only: give it one with --folder DIR")
        return 2
    from ..errors import PublishError, SpaceFolderError
    from ..space.deploy.upload import deploy

    try:
        done = deploy(args.space_id, args.model, private=args.private, dry_run=args.dry_run, folder=args.folder,
                      title=args.title, token=args.token)  # fmt: skip
    except SpaceFolderError as e:
        error(str(e))
        return 2
    except PublishError as e:
        error(str(e))
        error("nothing was changed on the Hub that a rerun would not replace; fix the problem and run it again")
        return 1
    files = done.folder.files
    where = done.folder.path if args.dry_run else "the Space"
    print(f"wrote {len(files)} files ({sum(size for _, size in files) / 2**20:.1f} MB) to {where}:")
    for name, size in files:
        if not name.startswith("vae_hub/"):
            print(f"  {name}  ({size:,} bytes)")
    print(f"  vae_hub/  (the package, {sum(1 for n, _ in files if n.startswith('vae_hub/'))} files)")
    for name, repo in done.folder.referenced.items():
        print(f"model {name}: {repo} on the Hub, downloaded by the Space when it starts")
    if done.commit_url:
        print(f"uploaded to {done.space_url} in one commit: {done.commit_url}")
    return 0
