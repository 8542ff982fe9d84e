"""Training checkpoints as safetensors + JSON (no pickle), written atomically.

A checkpoint is a folder ``<dir>/epoch-NNNN`` holding ``model.safetensors``, ``optimizer.safetensors``,
``rng-<rank>.safetensors`` and ``state.json`` (epoch, step, optimizer groups, scheduler, history, Python/NumPy RNG).
It is written under a temporary name and renamed into place; the file ``<dir>/latest`` names the newest complete one.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import CheckpointError
from ..fileio import atomic_write
from .optim import Adam

LATEST = "latest"
EMA_FILE = "ema.safetensors"


def optimizer_to_flat(optimizer: Adam | torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (for safetensors) and JSON-able metadata."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    py_version, py_internal, py_gauss = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [py_version, list(py_internal), py_gauss],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def staging_dir(directory: Path, epoch: int) -> Path:
    return directory / f".epoch-{epoch:04d}.partial"


def save(
    directory: Path,
    epoch: int,
    model: nn.Module,
    optimizer: Adam | torch.optim.Optimizer,
    state: dict[str, Any],
    *,
    rank: int = 0,
    is_main: bool = True,
    barrier: Callable[[], None] = lambda: None,
    keep: int = 1,
    ema: nn.Module | None = None,
) -> Path:
    """Write the checkpoint of ``epoch``; every process calls this (``barrier`` syncs them), the main one commits.

    The folder is staged under a temporary name, filled (each process its own RNG state, the main process model,
    optimizer and ``state``, and the moving average of the weights when there is one, ``ema.safetensors``),
    renamed into place, and ``latest`` is pointed at it; older ones beyond ``keep`` go.
    """
    tmp, final = staging_dir(directory, epoch), directory / f"epoch-{epoch:04d}"
    if is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    tensors, meta = rng_state()
    save_file(tensors, str(tmp / f"rng-{rank}.safetensors"))
    (tmp / f"rng-{rank}.json").write_text(json.dumps(meta))
    barrier()
    if is_main:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        if ema is not None:
            save_file({k: v.detach().contiguous().cpu() for k, v in ema.state_dict().items()}, str(tmp / EMA_FILE))
        opt_tensors, opt_meta = optimizer_to_flat(optimizer)
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "state.json").write_text(json.dumps({**state, "epoch": epoch, "optimizer": opt_meta}, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        atomic_write(directory / LATEST, lambda p: p.write_text(final.name))
        for old in sorted(directory.glob("epoch-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier()
    return final


def latest(directory: Path) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    path = directory / pointer.read_text().strip()
    return path if (path / "state.json").is_file() else None


def load(
    path: Path,
    model: nn.Module,
    optimizer: Adam | torch.optim.Optimizer,
    rank: int,
    map_location: str = "cpu",
    ema: nn.Module | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer, the weights' moving average (``ema``, if given) and this process's RNG from
    ``path``; returns the saved state.

    Raises ``CheckpointError`` when the checkpoint is incomplete, corrupt or does not fit.
    """
    rng_file = path / f"rng-{rank}.safetensors"
    if not rng_file.is_file():
        raise CheckpointError(
            f"cannot resume from {path}: it has no RNG state for process {rank} ({rng_file.name}); "
            "resume with the same number of processes as the run that wrote it"
        )
    try:
        state = json.loads((path / "state.json").read_text())
        model.load_state_dict(load_file(str(path / "model.safetensors"), device=map_location), strict=True)
        tensors = load_file(str(path / "optimizer.safetensors"), device=map_location)
        optimizer.load_state_dict(optimizer_from_flat(tensors, state["optimizer"]))
        if ema is not None:
            if not (path / EMA_FILE).is_file():
                raise ValueError(f"it has no {EMA_FILE}: it was written without --ema")
            ema.load_state_dict(load_file(str(path / EMA_FILE), device=map_location), strict=True)
        set_rng_state(load_file(str(rng_file)), json.loads((path / f"rng-{rank}.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as e:
        # RuntimeError: load_state_dict on missing or mis-shaped tensors (another model's checkpoint)
        raise CheckpointError(f"cannot resume from {path}: {type(e).__name__}: {e}") from e
    return state
