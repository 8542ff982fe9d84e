"""``vae-hub space deploy``: write the Space folder for your models and upload it to the Hub in one commit."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi

from ...errors import SpaceFolderError
from ...hub.files import CONFIG_NAME
from ...hub.publish import push_errors
from .folder import SpaceFolder, write_space_folder

# files of an earlier deploy that this one replaces (models that are no longer shown, an older vae_hub)
REPLACED = ["models/**", "vae_hub/**"]


@dataclass(frozen=True)
class Deployment:
    """A deployed Space: its folder as uploaded, the commit and the page."""

    folder: SpaceFolder
    commit_url: str | None
    space_url: str | None


def deploy(
    space_id: str,
    models: list[str],
    *,
    private: bool = False,
    dry_run: bool = False,
    folder: str | Path | None = None,
    title: str | None = None,
    token: str | None = None,
) -> Deployment:
    """Write the Space for ``models`` into ``folder`` (default: a temporary one) and, unless ``dry_run``, create the
    Space repo ``space_id`` (Gradio SDK) and upload the folder as one commit. Each repo id in ``models`` must hold a
    ``config.json`` on the Hub (checked before anything is uploaded).

    The token comes from ``token``, ``HF_TOKEN`` or the login cache (``hf auth login``).
    """
    if folder is None:
        if dry_run:
            raise ValueError("a dry run needs a folder to write the Space into")
        with tempfile.TemporaryDirectory(prefix="vae-hub-space-") as tmp:
            return deploy(space_id, models, private=private, folder=Path(tmp) / "space", title=title, token=token)
    written = write_space_folder(folder, space_id, models, title=title)
    if dry_run:
        return Deployment(written, None, None)
    api = HfApi(token=token)
    with push_errors(space_id):  # a repo id that names no model would only fail when the Space starts
        missing = [repo for repo in written.referenced.values() if not api.file_exists(repo, CONFIG_NAME)]
    if missing:
        raise SpaceFolderError(
            f"{', '.join(missing)}: not a model folder here, and no vae-hub model on the Hub ({CONFIG_NAME} not "
            "found); give an existing folder or the repo id of a model you can read. Nothing was uploaded."
        )
    with push_errors(space_id):
        repo = api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=written.path, repo_id=space_id, repo_type="space", delete_patterns=REPLACED,
            commit_message=f"Deploy the vae-hub Space ({len(written.copied) + len(written.referenced)} models)",
        )  # fmt: skip
    return Deployment(written, str(info.commit_url), str(repo))
