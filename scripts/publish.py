"""Push a trained model folder (config, weights, card, metrics, pictures) to the Hugging Face Hub.

Usage: python scripts/publish.py runs/vae your-name/your-vae [--private] [--message "..."]
The token comes from --token, HF_TOKEN or the login cache (hf auth login).
"""

from __future__ import annotations

import argparse
import sys

from vae_hub.publish import PublishError, publish


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="a model folder written by scripts/train.py or save_pretrained")
    p.add_argument("repo_id", help="the Hub repo to push to (user/name); created if it does not exist")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--message", default="Upload VAE with vae-hub", help="commit message")
    p.add_argument("--token", default=None, help="Hugging Face token (default: HF_TOKEN or the login cache)")
    args = p.parse_args(argv)
    try:
        url = publish(args.folder, args.repo_id, private=args.private, commit_message=args.message, token=args.token)
    except PublishError as e:
        print(f"error: {e}", file=sys.stderr)
        print(f"the folder {args.folder} is unchanged; fix the problem and run this command again", file=sys.stderr)
        return 1
    print(f"pushed {args.folder} to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
