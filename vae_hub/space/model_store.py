"""The Space's models: the ones it offers by name, plus any vae-hub repo id or local folder, cached.

Loading goes through ``vae_hub.from_pretrained`` (strict, safetensors only, every model checked before anything is
allocated) under the Space's own size limit; a model's card and ``metrics.json`` come with it when the folder or
repo has them. Concurrent requests for the same name share one load, and the cache is bounded both in models and
in bytes of weights.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard

from ..errors import CheckpointError, CheckpointNotFoundError, ModelLoadError
from ..evaluation.metrics import kl_per_dimension
from ..hub.files import CONFIG_NAME, looks_like_local_path, resolve_file, source_name
from ..images import MNIST_MARGIN
from ..limits import MAX_TEXT_BYTES, max_model_bytes, size_text
from ..models.base import BaseVAE, require_vae
from ..models.loading import from_pretrained

DIGIT_DATASETS = ("mnist", "kmnist")  # centred in a 20x20 box like MNIST; other data sets fill the frame
SPACE_MAX_MODEL_MB = 256  # the Space's size limit per model, unless VAE_HUB_MAX_MODEL_MB says otherwise
CACHE_MB = 1024  # weights kept in memory, all models together

log = logging.getLogger("vae-hub-space")


@dataclass
class LoadedModel:
    """A model ready to serve, with what the page shows about it."""

    name: str
    model: BaseVAE
    card: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    kl_per_dim: list[float] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)  # what the lab computes once per model

    @property
    def dataset(self) -> str | None:
        return self.metrics.get("dataset")

    @property
    def margin(self) -> float:
        """How much of the frame drawings leave free, like the training images."""
        return MNIST_MARGIN if self.dataset in DIGIT_DATASETS or self.dataset is None else 0.04

    def dims_by_kl(self) -> list[int]:
        """Latent dimensions, the most used (largest KL) first."""
        return sorted(range(len(self.kl_per_dim)), key=lambda d: -self.kl_per_dim[d])

    @property
    def nbytes(self) -> int:
        """Memory taken by the weights."""
        return sum(t.numel() * t.element_size() for t in self.model.state_dict().values())

    def summary(self) -> str:
        m = self.model
        c, h, w = m.image_shape
        parts = [f"**{self.name}**: {type(m).__name__}, {c}x{h}x{w} images, {m.latent_dim}-D latent space"]
        test = self.metrics.get("test", {})
        if self.dataset:
            parts.append(f"trained on {self.dataset}")
        if "elbo" in test:
            parts.append(f"test ELBO {test['elbo']:.2f} nats")
        if "nll" in test:
            parts.append(f"NLL {test['nll']:.2f} (k={test.get('nll_k')})")
        return ", ".join(parts)


PICTURE = re.compile(r"^\s*!\[([^\]]*)\]\(([\w.-]+\.png)\)\s*$")  # ![caption](samples.png): a file beside the card
MAX_PICTURE_BYTES = 2 * 2**20
MAX_PICTURES = 8
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def card_text(card: str, source: str | Path | None = None) -> str:
    """The card without its YAML header; its pictures inlined (as data URIs) from the model's folder or repo.

    A picture that is not a PNG file beside the card (at most ``MAX_PICTURES`` of at most 2 MB) is left out.
    """
    text = ModelCard(card, ignore_metadata_errors=True).text if card else ""
    lines, shown = [], 0
    for line in text.splitlines():
        match = PICTURE.match(line)
        if not line.lstrip().startswith("!["):
            lines.append(line)
        elif match and source is not None and shown < MAX_PICTURES:
            data = read_picture(source, match.group(2))
            if data:
                lines.append(f"![{match.group(1)}](data:image/png;base64,{base64.b64encode(data).decode()})")
                shown += 1
    return "\n".join(lines).strip()


def read_picture(source: str | Path, filename: str) -> bytes:
    """A PNG file of a model folder or repo (b'' when it has none, or it is too large or not a PNG)."""
    try:
        data = resolve_file(source, filename, max_bytes=MAX_PICTURE_BYTES).read_bytes()
    except (CheckpointError, OSError):
        return b""
    return data if data.startswith(PNG_SIGNATURE) and len(data) <= MAX_PICTURE_BYTES else b""


ORDER_JSON = "order.json"  # in a folder of model folders: the ones the page lists, the first shown first
MAX_ORDER_JSON_BYTES = 16 * 1024


def find_models(names: list[str]) -> dict[str, str | Path]:
    """Models to offer by name: a model folder (named after it), a folder of model folders, or a Hub repo id.

    A folder of model folders offers those its ``order.json`` lists (``["name", ...]``), in that order; without
    one, all of them in name order. The first model found is the one the page shows first.
    """
    models: dict[str, str | Path] = {}
    for name in names:
        path = Path(name).expanduser()
        if (path / CONFIG_NAME).is_file():
            models[path.resolve().name] = path
        elif path.is_dir():
            inside = ordered(path) or sorted(p for p in path.iterdir() if (p / CONFIG_NAME).is_file())
            if not inside:
                raise ModelLoadError(f"{name} holds no vae-hub model (no {CONFIG_NAME} in it or in its sub-folders)")
            models |= {p.name: p for p in inside}
        else:
            models[name] = name
    return models


def ordered(folder: Path) -> list[Path]:
    """The model folders ``folder/order.json`` lists, in its order ([] when there is no such file)."""
    path = folder / ORDER_JSON
    if not path.is_file():
        return []
    if path.stat().st_size > MAX_ORDER_JSON_BYTES:
        raise ModelLoadError(f"{path} is larger than {MAX_ORDER_JSON_BYTES:,} bytes")
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError):
        names = None
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
        raise ModelLoadError(f'{path} must be a list of the model folders to offer, e.g. ["my-vae", ...]')
    folders = []
    for n in names:
        inside = (folder / n).resolve()
        if not (inside.is_relative_to(folder.resolve()) and (inside / CONFIG_NAME).is_file()):
            raise ModelLoadError(f"{path} names {n!r}, which is not a model folder in {folder}")
        folders.append(folder / n)
    return folders


def prior_kl_per_dim(model: BaseVAE, n: int = 512) -> list[float]:
    """KL per latent dimension of the model's own prior samples, re-encoded: a stand-in when no metrics ship."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % model.num_classes if model.conditional else None
    with torch.inference_mode():
        images = model.sample(n, generator=generator, labels=labels)
        return [round(float(v), 5) for v in kl_per_dimension(model, images, labels=labels)]


class ModelStore:
    """Load models by name, keep the last few in memory; safe to call from several threads."""

    def __init__(
        self,
        models: dict[str, str | Path],
        allow_local_paths: bool | None = None,
        max_cached: int = 6,
        max_cached_bytes: int = CACHE_MB * 2**20,
        max_model_bytes: int | None = None,
    ) -> None:
        """``models``: the names offered in the page and where each is loaded from (a folder or a repo id).

        ``max_model_bytes``: the largest model to load (default: ``VAE_HUB_MAX_MODEL_MB``, else 256 MB).
        """
        self.models = dict(models)
        if allow_local_paths is None:  # on Hugging Face Spaces (SPACE_ID is set) only repo ids are accepted
            allow_local_paths = os.environ.get("VAE_HUB_ALLOW_LOCAL_PATHS", "0" if "SPACE_ID" in os.environ else "1")
            allow_local_paths = allow_local_paths == "1"
        self.allow_local_paths = allow_local_paths
        self.max_cached = max_cached
        self.max_cached_bytes = max_cached_bytes
        self.max_model_bytes = max_model_bytes or _space_max_model_bytes()
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._trained: OrderedDict[str, LoadedModel] = OrderedDict()  # trained in the page: kept in memory only
        self._loading: dict[str, Future[LoadedModel]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> LoadedModel:
        """The model called ``name`` (bundled name, Hub repo id or local folder); raises ``ModelLoadError``.

        A name being loaded by another request is waited for, not loaded twice.
        """
        if not isinstance(name, str) or not name.strip():
            raise ModelLoadError("no model given: pick a bundled model or enter a Hub repo id such as user/name")
        name = name.strip()
        with self._lock:
            if name in self._trained:
                return self._trained[name]
            if name in self._cache:
                self._cache.move_to_end(name)
                return self._cache[name]
            pending = self._loading.get(name)
            if pending is None:
                pending = self._loading[name] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            return pending.result()
        try:  # outside the lock: a slow download does not block other users
            loaded = self._load(name)
        except BaseException as e:
            with self._lock:
                del self._loading[name]
            pending.set_exception(e)
            raise
        with self._lock:
            del self._loading[name]
            self._keep(name, loaded)
        pending.set_result(loaded)
        return loaded

    def add_trained(self, loaded: LoadedModel, max_kept: int = 8) -> None:
        """Serve a model trained in the page under ``loaded.name`` (the oldest beyond ``max_kept`` are forgotten)."""
        loaded.model.eval().requires_grad_(False)
        with self._lock:
            self._trained[loaded.name] = loaded
            while len(self._trained) > max_kept:
                self._trained.popitem(last=False)

    def cached_names(self) -> list[str]:
        """Names of the models in memory, the least recently used first."""
        with self._lock:
            return list(self._cache)

    def _keep(self, name: str, loaded: LoadedModel) -> None:
        """Cache ``loaded``, dropping the least recently used models beyond the count or byte bound."""
        self._cache[name] = loaded
        self._cache.move_to_end(name)
        while len(self._cache) > 1 and (
            len(self._cache) > self.max_cached or sum(m.nbytes for m in self._cache.values()) > self.max_cached_bytes
        ):
            self._cache.popitem(last=False)

    def _load(self, name: str) -> LoadedModel:
        shown = source_name(repr(name), 120)
        if name in self.models:
            source: str | Path = self.models[name]
        elif not self.allow_local_paths and (looks_like_local_path(name) or _is_dir(name)):
            raise ModelLoadError(f"{shown}: this Space loads Hub repo ids (user/name), not local folders")
        else:
            source = name
        start = time.perf_counter()
        try:
            model = require_vae(from_pretrained(source, max_bytes=self.max_model_bytes), "this Space")
            card = read_text(source, "README.md")
            metrics = read_json(source, "metrics.json")
        except CheckpointError as e:
            # the message names the source; a bundled model's source is a server path, shown by its name instead
            message = str(e).replace(os.fspath(source), name) if name in self.models else str(e)
            raise ModelLoadError(f"could not load {shown}: {message}") from None
        model.eval().requires_grad_(False)
        if model.convolutional:  # oneDNN's fast layout for convolutions, same outputs
            model.to(memory_format=torch.channels_last)
        kl = metrics.get("test", {}).get("kl_per_dim")
        if model.deterministic:  # an autoencoder has no KL: every dimension counts as used
            kl = [1.0] * model.latent_dim
        elif not (isinstance(kl, list) and len(kl) == model.latent_dim):
            kl = prior_kl_per_dim(model)
        loaded = LoadedModel(name, model, card_text(card, source), metrics, [float(v) for v in kl])
        log.info("loaded model %s (%s) in %.2f s", shown, size_text(loaded.nbytes), time.perf_counter() - start)
        return loaded


def _space_max_model_bytes() -> int:
    try:
        return max_model_bytes(default_mb=SPACE_MAX_MODEL_MB)
    except CheckpointError as e:  # a bad VAE_HUB_MAX_MODEL_MB stops the Space at start-up, not at each load
        raise SystemExit(f"vae-hub space: {e}") from None


def _is_dir(name: str) -> bool:
    try:
        return Path(name).expanduser().is_dir()
    except OSError:
        return False


def read_text(source: str | Path, filename: str) -> str:
    """An optional text file of a model folder or repo ('' when it has none or it is not text).

    Raises ``CheckpointError`` when the file is over ``MAX_TEXT_BYTES`` or a link out of the model folder.
    """
    try:
        return resolve_file(source, filename, max_bytes=MAX_TEXT_BYTES).read_text(encoding="utf-8")
    except (CheckpointNotFoundError, OSError, UnicodeDecodeError):
        return ""


def read_json(source: str | Path, filename: str) -> dict[str, Any]:
    try:
        value = json.loads(read_text(source, filename) or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
