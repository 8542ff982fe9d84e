"""Saving and strictly loading vae-hub models: ``config.json`` + ``model.safetensors``, local or on the Hub.

Model classes register here under their class name (``BaseVAE`` does it for every subclass); ``config.json`` names
the class in ``model_type``, so any vae-hub model loads without knowing its class first.

The mixin's own loader keeps random weights for anything missing (``strict=False``), falls back to pickled
``pytorch_model.bin`` files and treats a mistyped local path as a repo id. This loader does none of that: every
problem raises a :class:`~vae_hub.errors.CheckpointError` that names it.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Any, TypeVar

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import CheckpointError, CheckpointNotFoundError
from .fileio import atomic_write

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_TYPE_KEY = "model_type"


ModelT = TypeVar("ModelT", bound=type[nn.Module])
MODEL_TYPES: dict[str, type[nn.Module]] = {}


def register(cls: ModelT) -> ModelT:
    """Make ``cls`` loadable from a ``config.json`` whose ``model_type`` is its class name."""
    MODEL_TYPES[cls.__name__] = cls
    return cls


def save_model(model: nn.Module, directory: Path, config: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` (init arguments plus ``model_type``) atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    config = {**config, MODEL_TYPE_KEY: type(model).__name__}
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(text, encoding="utf-8"))


def looks_like_local_path(name: str) -> bool:
    """True for names that can only be paths: absolute, ./ ../ ~, or not of the form ``user/name`` / ``name``."""
    return (
        os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")
    )


def resolve_file(name_or_path: str | Path, filename: str, **hub_kwargs: Any) -> Path:
    """The local path of ``filename`` inside a local model folder or a Hub repo (downloaded to the cache)."""
    name = os.fspath(name_or_path)
    local = Path(name).expanduser()
    if local.is_dir():
        path = local / filename
        if not path.is_file():
            raise CheckpointNotFoundError(
                f"{path} does not exist: a vae-hub model folder holds {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(written by save_pretrained)"
            )
        return path
    if local.exists():
        raise CheckpointNotFoundError(f"{name} is a file; expected a model folder or a Hub repo id (user/name)")
    if isinstance(name_or_path, Path) or looks_like_local_path(name):
        raise CheckpointNotFoundError(f"local folder {name} does not exist")
    # a name like "runs/my-vae" may be a mistyped local folder: say so in the errors below
    repo = f"{name!r} (there is no local folder of that name either)" if "/" in name else repr(name)
    try:
        return Path(hf_hub_download(repo_id=name, filename=filename, **hub_kwargs))
    except HFValidationError as e:
        raise CheckpointNotFoundError(
            f"{name!r} is neither an existing local folder nor a valid Hub repo id (user/name): {e}"
        ) from e
    except RepositoryNotFoundError as e:
        raise CheckpointNotFoundError(
            f"Hub repo {repo} was not found, or is private and no valid token was given"
        ) from e
    except RevisionNotFoundError as e:
        revision = hub_kwargs.get("revision")
        raise CheckpointNotFoundError(f"revision {revision!r} of Hub repo {name!r} was not found") from e
    except LocalEntryNotFoundError as e:
        raise CheckpointError(
            f"could not reach the Hub to download {filename} from {repo}, and it is not in the local cache: {e}"
        ) from e
    except EntryNotFoundError as e:
        raise CheckpointNotFoundError(
            f"Hub repo {name!r} has no {filename}: is it a vae-hub model (saved with save_pretrained)?"
        ) from e
    except (HfHubHTTPError, OSError) as e:
        raise CheckpointError(f"could not download {filename} from Hub repo {name!r}: {e}") from e


def read_config(name_or_path: str | Path, **hub_kwargs: Any) -> dict[str, Any]:
    """Read and check a model's ``config.json``."""
    path = resolve_file(name_or_path, CONFIG_NAME, **hub_kwargs)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def model_class(config: dict[str, Any], source: str) -> type[nn.Module]:
    """The registered class that ``config.json`` names."""
    model_type = config.get(MODEL_TYPE_KEY)
    if model_type is None:
        raise CheckpointError(
            f"config.json of {source} has no {MODEL_TYPE_KEY!r}: it was not written by vae-hub's save_pretrained"
        )
    try:
        return MODEL_TYPES[model_type]
    except KeyError:
        known = ", ".join(sorted(MODEL_TYPES))
        raise CheckpointError(f"{source} is a {model_type!r}, which vae-hub does not know (known: {known})") from None


def build_model(cls: type[nn.Module], config: dict[str, Any], source: str) -> nn.Module:
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in config.items() if k in params and k != "self"}
    unknown = sorted(set(config) - set(kwargs) - {MODEL_TYPE_KEY})
    if unknown:
        warnings.warn(
            f"config.json of {source} has keys {cls.__name__} does not take, ignored: {unknown}", stacklevel=3
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"config.json of {source} does not describe a valid {cls.__name__}: {e}") from e


def load_weights(model: nn.Module, path: Path, map_location: str | torch.device) -> None:
    """Load ``path`` into ``model`` strictly: every tensor present, none extra, every shape equal."""
    try:
        state = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {e}") from e
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing weights {missing}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected}")
    if mis_shaped:
        problems.append(f"mis-shaped weights [{'; '.join(mis_shaped)}]")
    if problems:
        raise CheckpointError(f"{path} does not match {type(model).__name__} as configured: " + ", ".join(problems))
    model.load_state_dict(state, strict=True)


def load_model(
    name_or_path: str | Path,
    *,
    expected: type[nn.Module] | None = None,
    map_location: str | torch.device = "cpu",
    **hub_kwargs: Any,
) -> nn.Module:
    """Build the model class named in ``config.json`` and load its weights strictly; returns it in eval mode.

    ``expected``: refuse a model that is not of this class (or a subclass of it); None accepts any registered class.
    """
    source = os.fspath(name_or_path)
    config = read_config(name_or_path, **hub_kwargs)
    cls = model_class(config, source)
    if expected is not None and not issubclass(cls, expected):
        raise CheckpointError(
            f"{source} holds a {cls.__name__}, not a {expected.__name__}; "
            f"load it with {cls.__name__}.from_pretrained or vae_hub.from_pretrained"
        )
    model = build_model(cls, config, source)
    load_weights(model, resolve_file(name_or_path, WEIGHTS_NAME, **hub_kwargs), map_location)
    return model.to(map_location).eval()
