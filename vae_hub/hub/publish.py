"""Publishing a trained model folder to the Hugging Face Hub."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

from ..errors import CheckpointError, PublishError
from .save_load import CONFIG_NAME, WEIGHTS_NAME, load_model

IGNORE = ["checkpoints/**", ".*", "**/.*"]


def publish(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    commit_message: str = "Upload VAE with vae-hub",
    token: str | None = None,
) -> str:
    """Upload a model folder to the Hugging Face Hub in one commit: config, weights, card, metrics and pictures.

    The folder is first loaded strictly (a broken folder is never uploaded); training checkpoints stay local.

    Args:
        folder: A model folder written by ``vae-hub train`` (or ``save_pretrained``).
        repo_id: The model repo, ``"user/name"``; created when missing.
        private: Create the repo as private.
        commit_message: The commit's message.
        token: A Hub token (default: ``HF_TOKEN`` or the ``hf auth login`` cache).

    Returns:
        The commit's URL.

    Raises:
        PublishError: When the folder is not a loadable model, or the Hub refused or failed (the message says
            which; the folder is untouched, and the same call can be retried).
    """
    folder = Path(folder)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise PublishError(f"{folder} has no {name}: is it a model folder written by vae-hub train?")
    try:
        load_model(folder)
    except CheckpointError as e:
        raise PublishError(f"{folder} does not hold a loadable vae-hub model, not pushing it: {e}") from e
    api = HfApi(token=token)
    with push_errors(repo_id):
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            folder_path=folder, repo_id=repo_id, commit_message=commit_message, ignore_patterns=IGNORE
        )
    return str(info.commit_url)


@contextmanager
def push_errors(repo_id: str) -> Iterator[None]:
    """Every failure of a push to ``repo_id`` (no token, refused, no network) as a ``PublishError``."""
    try:
        yield
    except LocalTokenNotFoundError as e:
        raise PublishError(f"no Hugging Face token: set HF_TOKEN or run `hf auth login` ({e})") from e
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "no response"
        raise PublishError(f"the Hub refused the push to {repo_id} (HTTP {status}): {e}") from e
    except Exception as e:  # no network (the HTTP client's own errors), invalid repo ids, ...
        raise PublishError(f"could not push to {repo_id}: {type(e).__name__}: {e}") from e
