"""Decoded images cached on disk as one uint8 file, memory-mapped by every run and every process that reads it.

A cache folder ``<key>/`` holds ``images.u8`` (the rows (N, C, S, S), training images first, then the test
images), ``labels.safetensors`` and ``meta.json``. It is keyed by the source's files and the settings that change
the decoded pictures, so a changed file or setting is a new key. The images are never read into a process's own
memory: ``torch.from_file`` maps them, and the operating system's page cache holds one copy however many
processes train on them, keeping what fits in RAM when they do not.

A cache is written in ``<key>.partial/``: the file is allocated first (so a full disk is found before the work),
each decoded chunk is recorded in ``progress.jsonl`` after its rows are on disk, and an interrupted decoding
continues where it stopped. Only when every row is written does the folder get its final name, in one rename: a
half-written cache is never read.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import DataError
from ..limits import MAX_TEXT_BYTES, size_text
from .image_data import ImageData, Splits
from .spec import DataSpec

CACHE_FORMAT = 2  # bump when what is cached changes (1: one safetensors file read into memory)
IMAGES, LABELS, META = "images.u8", "labels.safetensors", "meta.json"
PLAN, PROGRESS = "plan.json", "progress.jsonl"  # of a cache being written
DISK_RESERVE = 64 * 2**20  # bytes left free on the disk after the cache is allocated
COMPACT_ROWS = 4096  # rows moved at a time when failed pictures are squeezed out


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


def disk_free(folder: Path) -> int:
    """Bytes free on the disk that holds ``folder``."""
    return shutil.disk_usage(folder).free


@dataclass
class Plan:
    """What a cache being written will hold: its shape, and which source rows go where (train rows first)."""

    channels: int
    size: int
    train_rows: np.ndarray  # indices into the training table
    test_rows: np.ndarray  # indices into the test table (the training table's, for a held-out split)
    test_table: str  # "train" or "test"
    info: dict[str, Any]  # what the card says: name, split note, class names, skipped files, ...

    @property
    def rows(self) -> int:
        return len(self.train_rows) + len(self.test_rows)

    @property
    def row_bytes(self) -> int:
        return self.channels * self.size * self.size


class DecodedCache:
    """The cache folder of one key in ``folder``: complete (``open``) or being written (``begin``, ``finish``)."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder, self.key = Path(folder), key
        self.final = self.folder / key
        self.partial = self.folder / f"{key}.partial"

    def complete(self) -> bool:
        return (self.final / META).is_file()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while the cache is written: a second run on the same data waits, then reads it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{self.key}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # --- reading ----------------------------------------------------------------------------------------------
    def open(self) -> Splits:
        """The cached splits, their images mapped from the file (not read into memory).

        Raises:
            DataError: When the folder is damaged (a file missing or of the wrong size).
        """
        meta = _read_json(self.final / META)
        try:
            n_train, n_test = int(meta["n_train"]), int(meta["n_test"])
            c, s = int(meta["channels"]), int(meta["size"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"the decoded cache {self.final} is damaged ({e}); delete it to decode again") from None
        images_file, rows = self.final / IMAGES, n_train + n_test
        expected = rows * c * s * s
        found = images_file.stat().st_size if images_file.is_file() else -1
        if meta.get("format") != CACHE_FORMAT or found != expected or rows < 1:
            raise DataError(
                f"the decoded cache {self.final} is damaged: {IMAGES} has {found} bytes, expected {expected} for "
                f"{rows} images of {c}x{s}x{s}; delete it to decode again"
            )
        images = torch.from_file(str(images_file), shared=False, size=expected, dtype=torch.uint8)
        images = images.view(rows, c, s, s)
        labels = load_file(str(self.final / LABELS))
        names, info = meta["class_names"], meta["info"]
        return Splits(
            ImageData(images[:n_train], labels["train"], names),
            ImageData(images[n_train:], labels["test"], names),
            info["name"], info["display_name"], info["hub_id"], info["split_note"], info["train_size"],
            info["skipped"],
        )  # fmt: skip

    # --- writing ----------------------------------------------------------------------------------------------
    def resumable_plan(self) -> Plan | None:
        """The plan of an interrupted write of this key, if one was begun."""
        try:
            meta = _read_json(self.partial / PLAN)
            rows = np.load(self.partial / "rows.npy", allow_pickle=False)
        except (OSError, ValueError, KeyError):
            return None
        n_train = int(meta["n_train"])
        return Plan(meta["channels"], meta["size"], rows[:n_train], rows[n_train:], meta["test_table"], meta["info"])

    def begin(self, plan: Plan) -> None:
        """Start writing: check the disk, allocate the images file, write the plan.

        Raises:
            DataError: When the disk lacks the space, naming what is needed and what is free.
        """
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        needed, free = plan.rows * plan.row_bytes, disk_free(self.partial)
        if needed + DISK_RESERVE > free:
            shutil.rmtree(self.partial, ignore_errors=True)
            raise DataError(
                f"decoding {plan.rows:,} images of {plan.channels}x{plan.size}x{plan.size} needs "
                f"{size_text(needed)} on disk for the decoded cache in {self.folder}, which has {size_text(free)} "
                "free: free some space, pass --cache-dir on a larger disk, or use a smaller --image-size"
            )
        with open(self.partial / IMAGES, "wb") as f:
            f.truncate(needed)
            if hasattr(os, "posix_fallocate"):  # reserve the blocks now: a full disk fails here, not mid-way
                with contextlib.suppress(OSError):
                    os.posix_fallocate(f.fileno(), 0, needed)
        np.save(self.partial / "rows.npy", np.concatenate([plan.train_rows, plan.test_rows]).astype(np.int64))
        meta = {"channels": plan.channels, "size": plan.size, "n_train": len(plan.train_rows),
                "test_table": plan.test_table, "info": plan.info}  # fmt: skip
        _write_json(self.partial / PLAN, meta)

    def images_path(self) -> Path:
        return self.partial / IMAGES

    def done(self) -> tuple[set[int], list[tuple[int, str, str]]]:
        """The first rows of the chunks already written, and their failed pictures (row, name, why)."""
        done, failures = set(), []
        path = self.partial / PROGRESS
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # the last line of a run killed while writing it
                    continue
                done.add(int(entry["row"]))
                failures += [tuple(f) for f in entry["failures"]]
        return done, failures

    def record(self, first_row: int, failures: list[tuple[int, str, str]]) -> None:
        """Note a chunk as written (after its rows are on disk)."""
        with open(self.partial / PROGRESS, "a") as f:
            f.write(json.dumps({"row": first_row, "failures": failures}) + "\n")

    def finish(self, plan: Plan, train_labels: torch.Tensor, test_labels: torch.Tensor, failed: set[int]) -> None:
        """Squeeze out the rows that failed, write labels and meta, and give the folder its final name."""
        path = self.partial / IMAGES
        n_train = len(plan.train_rows) - sum(1 for r in failed if r < len(plan.train_rows))
        rows = plan.rows - len(failed)
        if failed:
            _compact(path, plan.rows, plan.row_bytes, failed)
        with open(path, "r+b") as f:
            f.truncate(rows * plan.row_bytes)
            os.fsync(f.fileno())
        save_file({"train": train_labels.contiguous(), "test": test_labels.contiguous()}, str(self.partial / LABELS))
        meta = {"format": CACHE_FORMAT, "n_train": n_train, "n_test": rows - n_train, "channels": plan.channels,
                "size": plan.size, "class_names": plan.info.pop("class_names"), "info": plan.info}  # fmt: skip
        _write_json(self.partial / META, meta)
        for name in (PLAN, PROGRESS, "rows.npy"):
            (self.partial / name).unlink(missing_ok=True)
        shutil.rmtree(self.final, ignore_errors=True)  # a damaged one
        os.replace(self.partial, self.final)


def _compact(path: Path, rows: int, row_bytes: int, failed: set[int]) -> None:
    """Move every kept row down over the failed ones, in order, a block at a time."""
    data = np.memmap(path, dtype=np.uint8, mode="r+", shape=(rows, row_bytes))
    write = min(failed)
    for start in range(write, rows, COMPACT_ROWS):
        stop = min(start + COMPACT_ROWS, rows)
        keep = [r for r in range(start, stop) if r not in failed]
        block = data[keep]  # a copy: the rows it is written over may be its own
        data[write : write + len(keep)] = block
        write += len(keep)
    data.flush()
    del data


def _read_json(path: Path) -> Any:
    if path.stat().st_size > MAX_TEXT_BYTES * 64:  # class names of a large data set, never more
        raise DataError(f"{path} is too large to be a cache's description")
    return json.loads(path.read_text())


def _write_json(path: Path, value: Any) -> None:
    with open(path, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
