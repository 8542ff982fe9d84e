"""Decoding many pictures in worker processes, in chunks, each straight into its rows of a memory-mapped file.

A table of undecoded pictures (the files of a folder, or a dataset's image column) is read in chunks of ``CHUNK``
rows: first the headers (size and greyness, which choose the shape), then the pictures, each chunk written into
its place in the decoded cache by the worker that decoded it, so that the main process never holds the images.
Workers are forked processes: Pillow holds the GIL for much of a small picture's decoding, so threads do not scale.
A few thousand pictures are decoded in this process, where starting workers would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .image_folder import Source, decode, describe, read_header

CHUNK = 2048  # pictures per task: the unit of progress and of resuming
IN_PROCESS_BELOW = 4096  # pictures: fewer are decoded in this process, without starting workers


class PictureTable(Protocol):
    """Rows of undecoded pictures: ``get`` gives the sources of some rows, ``name`` a row's name for messages."""

    def __len__(self) -> int: ...

    def name(self, index: int) -> str: ...

    def get(self, indices: Sequence[int]) -> list[Source]: ...


@dataclass
class FileTable:
    """The image files of a folder, named by their path inside it."""

    root: Path
    files: list[Path]

    def __len__(self) -> int:
        return len(self.files)

    def name(self, index: int) -> str:
        return str(self.files[index].relative_to(self.root))

    def get(self, indices: Sequence[int]) -> list[Source]:
        return [self.files[int(i)] for i in indices]


@dataclass
class Headers:
    """What the headers of a table's pictures say: ``sizes`` (N, 2) as (width, height), -1 where unreadable."""

    sizes: np.ndarray
    grey: np.ndarray
    errors: list[tuple[int, str]]  # (row, why) of every unreadable picture

    @property
    def readable(self) -> np.ndarray:
        """The indices of the pictures whose header could be read, ascending."""
        return np.flatnonzero(self.sizes[:, 0] >= 0)


@dataclass(frozen=True)
class DecodeTask:
    """Decode ``indices`` of ``table`` into rows ``first_row...`` of the uint8 file at ``path``."""

    table: str
    indices: np.ndarray
    first_row: int
    path: str
    channels: int
    size: int


_tables: dict[str, PictureTable] = {}  # a worker's tables, set once when it starts


def _set_tables(tables: dict[str, PictureTable]) -> None:
    global _tables
    _tables = tables


def _scan_chunk(task: tuple[str, int, int]) -> tuple[str, int, np.ndarray, np.ndarray, list[tuple[int, str]]]:
    key, start, stop = task
    sizes = np.full((stop - start, 2), -1, dtype=np.int32)
    grey = np.zeros(stop - start, dtype=bool)
    errors = []
    for j, source in enumerate(_tables[key].get(range(start, stop))):
        try:
            (width, height), grey[j] = read_header(source)
        except Exception as e:  # Pillow raises many kinds for a broken file; each is reported by name
            errors.append((start + j, describe(e)))
            continue
        sizes[j] = width, height
    return key, start, sizes, grey, errors


def decode_chunk(task: DecodeTask) -> tuple[int, int, list[tuple[int, str, str]]]:
    """Decode one task into its rows of the file.

    Returns:
        (first row, rows, failures as (row, name, why)); a failed row is left as zeros.
    """
    table = _tables[task.table]
    row_bytes = task.channels * task.size * task.size
    shape = (len(task.indices), task.channels, task.size, task.size)
    out = np.memmap(task.path, dtype=np.uint8, mode="r+", offset=task.first_row * row_bytes, shape=shape)
    failures = []
    for j, source in enumerate(table.get(task.indices)):
        try:
            out[j] = decode(source, task.channels, task.size)
        except Exception as e:  # as above: skipped and named
            failures.append((task.first_row + j, table.name(int(task.indices[j])), describe(e)))
    out.flush()  # on disk before the chunk is recorded as done
    del out
    return task.first_row, len(task.indices), failures


def default_workers() -> int:
    """One worker per CPU core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_tasks(
    fn: Callable[[Any], Any], tasks: Sequence[Any], tables: dict[str, PictureTable], workers: int, pictures: int
) -> Iterator[Any]:
    """``fn`` over ``tasks`` in worker processes (results in the order they finish), or here for a few pictures."""
    if workers <= 1 or len(tasks) <= 1 or pictures < IN_PROCESS_BELOW:
        _set_tables(tables)
        try:
            yield from map(fn, tasks)
        finally:
            _set_tables({})
        return
    # fork shares the tables (a dataset, a file list) without pickling them; spawn elsewhere (macOS, Windows)
    method = "fork" if sys.platform == "linux" else "spawn"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)  # Python >= 3.12
        pool = multiprocessing.get_context(method).Pool(min(workers, len(tasks)), _set_tables, (tables,))
    with pool:
        yield from pool.imap_unordered(fn, tasks)


def scan_headers(tables: dict[str, PictureTable], workers: int, bar: Callable[[int, str], Any]) -> dict[str, Headers]:
    """The headers of every picture of every table; ``bar(total, desc)`` makes a progress bar."""
    tasks = [(key, a, min(a + CHUNK, len(t))) for key, t in tables.items() for a in range(0, len(t), CHUNK)]
    total = sum(len(t) for t in tables.values())
    sizes = {key: np.full((len(t), 2), -1, dtype=np.int32) for key, t in tables.items()}
    grey = {key: np.zeros(len(t), dtype=bool) for key, t in tables.items()}
    errors: dict[str, list[tuple[int, str]]] = {key: [] for key in tables}
    with bar(total, "reading headers") as progress:
        for key, start, s, g, e in run_tasks(_scan_chunk, tasks, tables, workers, total):
            sizes[key][start : start + len(s)] = s
            grey[key][start : start + len(g)] = g
            errors[key] += e
            progress.update(len(s))
    return {key: Headers(sizes[key], grey[key], sorted(errors[key])) for key in tables}


def decode_tasks(segments: Sequence[tuple[str, np.ndarray]], path: Path, channels: int, size: int) -> list[DecodeTask]:
    """Chunked tasks that decode each segment (a table's rows) after the one before it in the file."""
    tasks, row = [], 0
    for table, indices in segments:
        for a in range(0, len(indices), CHUNK):
            chunk = indices[a : a + CHUNK]
            tasks.append(DecodeTask(table, chunk, row, str(path), channels, size))
            row += len(chunk)
    return tasks
