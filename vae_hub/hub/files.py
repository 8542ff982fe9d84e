"""Finding a model's files, in a local folder or a Hub repo, within limits and without leaving the folder.

Every problem is a ``CheckpointError`` whose message quotes the name the user gave (cut
short), never a server path of the Hub cache.
"""

from __future__ import annotations

import os
from itertools import chain
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..errors import CheckpointError, CheckpointNotFoundError
from ..limits import MAX_NAME_CHARS

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def looks_like_local_path(name: str) -> bool:
    """True for names that can only be paths: absolute, ./ ../ ~, or not of the form ``user/name`` / ``name``."""
    return (
        os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")
    )


def source_name(name: str, limit: int = 200) -> str:
    """A model's name for messages: as given, or its start when it is absurdly long."""
    return name if len(name) <= limit else f"{name[: limit // 2]}... ({len(name):,} characters)"


def check_name(name_or_path: Any) -> str:
    """The name as a string, refused when it cannot be a folder or a repo id (not a string, empty, too long)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise CheckpointNotFoundError(
            "expected a local folder or a Hub repo id (user/name) as a string or path, "
            f"got {type(name_or_path).__name__}"
        )
    name = os.fspath(name_or_path)
    if not isinstance(name, str) or not name.strip() or "\0" in name:
        raise CheckpointNotFoundError(f"{source_name(repr(name))} is not a local folder or a Hub repo id (user/name)")
    if len(name) > MAX_NAME_CHARS:
        raise CheckpointNotFoundError(
            f"the model name is {len(name):,} characters long; a local folder path or a Hub repo id (user/name) "
            f"has at most {MAX_NAME_CHARS:,}"
        )
    return name


def local_folder(name_or_path: str | Path) -> Path | None:
    """The local model folder ``name_or_path`` names, or None when it is not one (then it may be a repo id)."""
    local = Path(name_or_path).expanduser()
    try:
        if local.is_dir():
            return local
        exists = local.exists()
    except OSError:  # a name too long for the file system is not a folder here
        exists = False
    if exists:
        raise CheckpointNotFoundError(
            f"{source_name(os.fspath(name_or_path))} is a file; expected a model folder or a Hub repo id (user/name)"
        )
    if isinstance(name_or_path, Path) or looks_like_local_path(os.fspath(name_or_path)):
        raise CheckpointNotFoundError(f"local folder {source_name(os.fspath(name_or_path))} does not exist")
    return None


def folder_root(folder: Path) -> Path:
    """What a folder's links may point into: the folder, or the whole repo of a Hub cache snapshot."""
    real = folder.resolve()
    if real.parent.name == "snapshots" and real.parent.parent.name.startswith("models--"):
        return real.parent.parent  # the Hub cache links snapshot files to ../../blobs
    return real


def check_links(folder: Path, source: str, max_entries: int = 10_000) -> None:
    """Refuse a model folder holding a link to a file outside it: the Space shows its card, publish uploads it."""
    root = folder_root(folder)
    seen = 0
    for directory, dirs, files in os.walk(folder):
        for name in chain(dirs, files):
            seen += 1
            path = Path(directory, name)
            if seen > max_entries:
                raise CheckpointError(f"model folder {source} holds over {max_entries:,} files; is it a model folder?")
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                inside = path.relative_to(folder)
                raise CheckpointError(
                    f"{inside} in model folder {source} is a link to a file outside the folder; vae-hub reads only "
                    "files inside a model folder (copy the file in instead)"
                )


def resolve_file(name_or_path: str | Path, filename: str, max_bytes: int | None = None, **hub_kwargs: Any) -> Path:
    """The local path of one file of a model folder or a Hub repo (downloaded to the cache).

    Args:
        name_or_path: A local model folder or a Hub repo id.
        filename: The file inside it, e.g. ``"config.json"``.
        max_bytes: Refuse a larger file; for a Hub repo, before downloading it (from the size the Hub reports).
        **hub_kwargs: Passed to ``huggingface_hub.hf_hub_download`` (``revision``, ``token``, ...).

    Returns:
        The path.

    Raises:
        CheckpointError: For a missing file (``CheckpointNotFoundError``), an oversized one, or a link out of the
            folder.
    """
    name = check_name(name_or_path)
    folder = local_folder(name_or_path)
    if folder is not None:
        path = folder / filename
        if not path.is_file():
            raise CheckpointNotFoundError(
                f"{path} does not exist: a vae-hub model folder holds {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(written by save_pretrained)"
            )
        if not path.resolve().is_relative_to(folder_root(folder)):
            raise CheckpointError(f"{filename} in model folder {name} is a link to a file outside the folder")
        check_size(path.stat().st_size, max_bytes, filename, name)
        return path
    try:
        if max_bytes is not None and not hub_kwargs.get("local_files_only"):
            info = hf_hub_download(repo_id=name, filename=filename, dry_run=True, **hub_kwargs)
            check_size(info.file_size, max_bytes, filename, name)  # type: ignore[union-attr]
        path = Path(hf_hub_download(repo_id=name, filename=filename, **hub_kwargs))
    except CheckpointError:
        raise
    except Exception as e:
        raise hub_error(e, name, filename, hub_kwargs.get("revision")) from e
    check_size(path.stat().st_size, max_bytes, filename, name)
    return path


def check_size(nbytes: int | None, max_bytes: int | None, filename: str, source: str) -> None:
    if nbytes is not None and max_bytes is not None and nbytes > max_bytes:
        raise CheckpointError(
            f"{filename} of {source_name(source)} is {nbytes:,} bytes, more than the {max_bytes:,} bytes it may have"
        )


def hub_error(e: Exception, name: str, filename: str, revision: str | None) -> CheckpointError:
    """A download failure in words: which repo, which file, what to check."""
    quoted = source_name(repr(name))
    # a name like "runs/my-vae" may be a mistyped local folder: say so
    repo = f"{quoted} (there is no local folder of that name either)" if "/" in name else quoted
    if isinstance(e, HFValidationError):
        return CheckpointNotFoundError(
            f"{quoted} is neither an existing local folder nor a valid Hub repo id (user/name, at most 96 "
            "characters of letters, digits, '-', '_' and '.')"
        )
    if isinstance(e, RepositoryNotFoundError):
        return CheckpointNotFoundError(f"Hub repo {repo} was not found, or is private and no valid token was given")
    if isinstance(e, RevisionNotFoundError):
        return CheckpointNotFoundError(f"revision {revision!r} of Hub repo {quoted} was not found")
    if isinstance(e, LocalEntryNotFoundError):
        return CheckpointError(
            f"could not reach the Hub to download {filename} from {repo}, and it is not in the local cache"
        )
    if isinstance(e, EntryNotFoundError):
        return CheckpointNotFoundError(
            f"Hub repo {quoted} has no {filename}: is it a vae-hub model (saved with save_pretrained)?"
        )
    if isinstance(e, HfHubHTTPError):
        status = e.response.status_code if e.response is not None else "no response"
        return CheckpointError(f"could not download {filename} from Hub repo {quoted} (HTTP {status})")
    return CheckpointError(f"could not download {filename} from Hub repo {quoted}: {type(e).__name__}")
