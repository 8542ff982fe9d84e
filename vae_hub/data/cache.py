"""Decoded images cached on disk as safetensors, keyed by the source's files and the settings that change them.

A second run on the same folder or dataset starts at once; a changed file or setting is a new key.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..fileio import atomic_write
from .image_data import ImageData, Splits
from .spec import DataSpec

CACHE_FORMAT = 1  # bump when what is cached changes


def cache_key(spec: DataSpec, kind: str) -> str:
    """A hash of what the decoded images depend on: the source's files (names, sizes, times) and the settings."""
    settings = spec.decoded_settings() | {"format": CACHE_FORMAT, "kind": kind}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    if kind == "hub":
        digest.update(spec.dataset.encode())
    else:
        root = Path(spec.dataset).expanduser().resolve()
        digest.update(str(root).encode())
        for dirpath, dirnames, filenames in os.walk(root) if root.is_dir() else [(root.parent, [], [root.name])]:
            dirnames.sort()
            for name in sorted(filenames):
                stat = (Path(dirpath) / name).stat()
                digest.update(f"{dirpath}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def write_cache(path: Path, splits: Splits) -> None:
    tensors = {
        "train_images": splits.train.images, "train_labels": splits.train.labels,
        "test_images": splits.test.images, "test_labels": splits.test.labels,
    }  # fmt: skip
    meta = {
        "class_names": splits.class_names, "name": splits.name, "display_name": splits.display_name,
        "hub_id": splits.hub_id, "split_note": splits.split_note, "train_size": splits.train_size,
        "skipped": splits.skipped,
    }  # fmt: skip
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata={"vae_hub": json.dumps(meta)}))


def read_cache(path: Path) -> Splits:
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["vae_hub"])
    t = {k: v.clone() for k, v in load_file(str(path)).items()}  # own memory, not a map of the file
    names = meta["class_names"]
    return Splits(
        ImageData(t["train_images"], t["train_labels"], names),
        ImageData(t["test_images"], t["test_labels"], names),
        meta["name"], meta["display_name"], meta["hub_id"], meta["split_note"], meta["train_size"], meta["skipped"],
    )  # fmt: skip
