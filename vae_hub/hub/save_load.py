"""Saving and strictly loading vae-hub models: ``config.json`` + ``model.safetensors``, local or on the Hub.

Model classes register here under their class name (``BaseVAE`` does it for every subclass); ``config.json`` names
the class in ``model_type``, so any vae-hub model loads without knowing its class first.

The mixin's own loader keeps random weights for anything missing (``strict=False``), falls back to pickled
``pytorch_model.bin`` files and treats a mistyped local path as a repo id. This loader does none of that: every
problem raises a ``CheckpointError`` that names it.

A model from outside is untrusted input, so nothing is allocated before it is checked, in this order: the name;
``map_location``; the size the Hub reports for ``config.json``; every config field's type and range
(``vae_hub.hub.config_rules``); the parameter count the config implies (the model is built on the ``meta``
device, which allocates nothing) against the size limit (``vae_hub.limits``); the weights file's size; its
safetensors header (names, shapes, dtypes) against the model. Only then are the tensors read, once, into memory of
their own (not a map of the file) and straight into the model (``load_state_dict(assign=True)``: no random
initialisation to overwrite). A local folder's files must stay inside it: a link pointing outside is refused.
"""

from __future__ import annotations

import inspect
import json
import warnings
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import CheckpointError, FieldError, HeaderError
from ..fileio import atomic_write
from ..limits import MAX_CONFIG_BYTES, max_model_bytes, size_text
from .config_rules import Rule, check_fields, shown
from .files import CONFIG_NAME, WEIGHTS_NAME, check_links, check_name, local_folder, resolve_file, source_name
from .safetensors_reader import MAX_HEADER_BYTES, TensorInfo, read_header, read_tensors

MODEL_TYPE_KEY = "model_type"


ModelT = TypeVar("ModelT", bound=type[nn.Module])
MODEL_TYPES: dict[str, type[nn.Module]] = {}


def register(cls: ModelT) -> ModelT:
    """Make a model class loadable from a ``config.json`` whose ``model_type`` is its class name.

    Every ``BaseVAE`` subclass is registered when it is defined. The class must declare ``config_rules`` (a rule
    per ``__init__`` argument), so that no value of a config.json reaches its constructor unchecked.

    Args:
        cls: The model class.

    Returns:
        ``cls`` itself (usable as a decorator).

    Raises:
        TypeError: When an ``__init__`` argument has no rule.
    """
    rules: dict[str, Rule] = getattr(cls, "config_rules", {})
    unchecked = sorted(set(init_parameters(cls)) - set(rules))
    if unchecked:
        raise TypeError(f"{cls.__name__}.config_rules has no rule for __init__ arguments {unchecked}")
    MODEL_TYPES[cls.__name__] = cls
    return cls


def init_parameters(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def save_model(model: nn.Module, directory: Path, config: dict[str, Any]) -> None:
    """Write ``model.safetensors`` and ``config.json`` (init arguments plus ``model_type``) atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(directory / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    config = {**config, MODEL_TYPE_KEY: type(model).__name__}
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(text, encoding="utf-8"))


def read_config(name_or_path: str | Path, **hub_kwargs: Any) -> dict[str, Any]:
    """Read a model's ``config.json``: a JSON object of at most ``MAX_CONFIG_BYTES``."""
    source = source_name(check_name(name_or_path))
    path = resolve_file(name_or_path, CONFIG_NAME, max_bytes=MAX_CONFIG_BYTES, **hub_kwargs)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{CONFIG_NAME} of {source} is not valid JSON: {e}") from e
    except RecursionError:
        raise CheckpointError(f"{CONFIG_NAME} of {source} is nested too deeply to be a model's config") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{CONFIG_NAME} of {source} must hold a JSON object, got {type(config).__name__}")
    return config


def model_class(config: dict[str, Any], source: str) -> type[nn.Module]:
    """The registered class that ``config.json`` names."""
    model_type = config.get(MODEL_TYPE_KEY)
    if model_type is None:
        raise CheckpointError(
            f"config.json of {source} has no {MODEL_TYPE_KEY!r}: it was not written by vae-hub's save_pretrained"
        )
    known = ", ".join(sorted(MODEL_TYPES))
    if not isinstance(model_type, str) or model_type not in MODEL_TYPES:
        raise CheckpointError(f"{source} is a {shown(model_type)}, which vae-hub does not know (known: {known})")
    return MODEL_TYPES[model_type]


def build_empty_model(cls: type[nn.Module], config: dict[str, Any], source: str) -> nn.Module:
    """The model ``config`` describes, on the meta device: its parameters have shapes but no memory."""
    try:
        kwargs = check_fields(getattr(cls, "config_rules", {}), config)
    except FieldError as e:
        raise CheckpointError(f"config.json of {source} does not describe a valid {cls.__name__}: {e}") from None
    unknown = sorted(set(config) - set(init_parameters(cls)) - {MODEL_TYPE_KEY})
    if unknown:
        warnings.warn(
            f"config.json of {source} has keys {cls.__name__} does not take, ignored: {shown(unknown)}", stacklevel=4
        )
    try:
        with torch.device("meta"):
            return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"config.json of {source} does not describe a valid {cls.__name__}: {e}") from e


def check_device(map_location: Any) -> torch.device:
    """``map_location`` as a device this machine has, or a CheckpointError that names it."""
    try:
        device = torch.device(map_location)
    except (RuntimeError, TypeError, ValueError):
        raise CheckpointError(
            f"map_location {shown(map_location)} is not a device; expected e.g. 'cpu', 'cuda', 'cuda:0' or 'mps'"
        ) from None
    if device.type == "meta":
        raise CheckpointError("map_location 'meta' holds no data; expected e.g. 'cpu', 'cuda' or 'mps'")
    try:
        torch.empty(0, device=device)
    except Exception as e:  # torch raises RuntimeError or AssertionError ("not compiled with CUDA") here
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"map_location {shown(map_location)} cannot be used on this machine: {reason}") from None
    return device


def check_header(header: dict[str, TensorInfo], model: nn.Module, source: str) -> None:
    """Every tensor present, none extra, every shape equal: from the header alone."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    mis_shaped = [
        f"{k}: file {header[k].shape} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in header and header[k].shape != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing weights {shown(missing, 300)}")
    if unexpected:
        problems.append(f"unexpected weights {shown(unexpected, 300)}")
    if mis_shaped:
        text = "; ".join(mis_shaped)
        problems.append(f"mis-shaped weights [{text if len(text) <= 600 else text[:580] + ' ...'}]")
    if problems:
        raise CheckpointError(
            f"{WEIGHTS_NAME} of {source} does not match {type(model).__name__} as configured: " + ", ".join(problems)
        )


def load_weights(model: nn.Module, path: Path, device: torch.device, source: str) -> nn.Module:
    """Check ``path``'s header against the (meta) ``model``, then read its tensors into it."""
    try:
        header = read_header(path)
    except HeaderError as e:
        raise CheckpointError(f"{WEIGHTS_NAME} of {source} is not a valid safetensors file: {e}") from None
    check_header(header, model, source)
    dtypes = {k: v.dtype for k, v in model.state_dict().items()}
    try:
        state = read_tensors(path, header)
    except (HeaderError, OSError) as e:
        raise CheckpointError(f"{WEIGHTS_NAME} of {source} is not a readable safetensors file: {e}") from e
    state = {k: v.to(device=device, dtype=dtypes[k]) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in chain(model.parameters(), model.buffers())):
        raise CheckpointError(f"{type(model).__name__} has tensors that are not saved in {WEIGHTS_NAME}")
    return model


def load_model(
    name_or_path: str | Path,
    *,
    expected: type[nn.Module] | None = None,
    map_location: str | torch.device = "cpu",
    max_bytes: int | None = None,
    **hub_kwargs: Any,
) -> nn.Module:
    """Build the model class named in ``config.json`` and load its weights strictly (what ``from_pretrained`` does).

    Args:
        name_or_path: A local model folder or a Hub repo id.
        expected: Refuse a model that is not of this class (or a subclass); None accepts any registered class.
        map_location: The device to load onto.
        max_bytes: Refuse a model whose weights take more bytes (default ``vae_hub.limits.max_model_bytes()``).
        **hub_kwargs: ``revision``, ``token``, ``cache_dir``, ``force_download``, ``local_files_only``.

    Returns:
        The model, in eval mode.

    Raises:
        CheckpointError: For any problem, naming it.
    """
    source = source_name(check_name(name_or_path))
    try:
        return _load_model(name_or_path, source, expected, map_location, max_bytes, hub_kwargs)
    except CheckpointError:
        raise
    except Exception as e:  # the promise is one error type; the cause keeps the traceback for debugging
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise CheckpointError(f"could not load {source}: {type(e).__name__}: {reason}") from e


def _load_model(
    name_or_path: str | Path,
    source: str,
    expected: type[nn.Module] | None,
    map_location: str | torch.device,
    max_bytes: int | None,
    hub_kwargs: dict[str, Any],
) -> nn.Module:
    device = check_device(map_location)
    limit = max_model_bytes() if max_bytes is None else max_bytes
    folder = local_folder(name_or_path)
    if folder is not None:
        check_links(folder, source)
    config = read_config(name_or_path, **hub_kwargs)
    cls = model_class(config, source)
    if expected is not None and not issubclass(cls, expected):
        raise CheckpointError(
            f"{source} holds a {cls.__name__}, not a {expected.__name__}; "
            f"load it with {cls.__name__}.from_pretrained or vae_hub.from_pretrained"
        )
    model = build_empty_model(cls, config, source)
    nbytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if nbytes > limit:
        count = sum(t.numel() for t in model.state_dict().values())
        raise CheckpointError(
            f"{source} is a {cls.__name__} of {count:,} parameters ({size_text(nbytes)}), over the size limit "
            f"of {size_text(limit)}; if you trust it, raise the limit with max_bytes= or the VAE_HUB_MAX_MODEL_MB "
            "environment variable"
        )
    # the file may store wider floats (F64) than the model; anything larger is not this model's weights
    weights = resolve_file(name_or_path, WEIGHTS_NAME, max_bytes=2 * nbytes + 8 + MAX_HEADER_BYTES, **hub_kwargs)
    return load_weights(model, weights, device, source).eval()
