"""Writing files so that a reader never sees half of one: a temporary file, then one rename."""

from __future__ import annotations

import gzip
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result onto ``path`` in one step: never a half-written file.

    The temporary name is unique per process and thread, so concurrent writers of one path never share it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # safetensors creates files readable by the owner only
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_copy(source: Path, target: Path, *, gunzip: bool = False) -> None:
    """Copy ``source`` to ``target`` atomically, decompressing it on the way when ``gunzip``."""

    def copy(tmp: Path) -> None:
        with gzip.open(source, "rb") if gunzip else open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)

    atomic_write(target, copy)
