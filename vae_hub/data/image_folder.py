"""Pictures from files: find them in a folder, read their sizes, decode them to uint8 tensors of one shape.

Each picture is converted to the model's channels (1: grey, 3: RGB; transparency is dropped) and, when its size is
not the requested one, scaled so that its shorter side fits and centre-cropped (``PIL.ImageOps.fit``). A file that
cannot be read is skipped and reported by name, or is an error under ``strict``. Many pictures are decoded in
worker processes by ``parallel_decode``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
SHOWN = 5  # how many skipped names a message lists

Source = Path | bytes | Callable[[], bytes]  # a file, its bytes, or a way to get them


@dataclass
class Skipped:
    """Files left out, with why: the first few by name (``items``) and how many in all (``count``).

    ``report()`` is one line naming the first few; a million broken files take no more memory than five.
    """

    items: list[tuple[str, str]] = field(default_factory=list)
    count: int = 0

    def add(self, name: str, why: str) -> None:
        if len(self.items) < SHOWN:
            self.items.append((name, why))
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def report(self) -> str:
        shown = "; ".join(f"{name} ({why})" for name, why in self.items)
        more = f" and {self.count - len(self.items)} more" if self.count > len(self.items) else ""
        return f"skipped {self.count} file(s) that are not readable images: {shown}{more}"


@dataclass(frozen=True)
class FolderListing:
    """The images found under a folder; ``labels`` are top-level sub-folder names, None when some image has none."""

    root: Path
    files: list[Path]
    labels: list[str] | None
    odd: list[Path]  # files that are not images by their extension


def list_image_folder(root: Path) -> FolderListing:
    """Every image file under ``root`` (nested, sorted; hidden files and folders ignored)."""
    files, odd = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            (files if path.suffix.lower() in IMAGE_EXTENSIONS else odd).append(path)
    labelled = all(len(p.relative_to(root).parts) >= 2 for p in files)
    labels = [p.relative_to(root).parts[0] for p in files] if files and labelled else None
    return FolderListing(root, files, labels, odd)


def _open(source: Source) -> Image.Image:
    if isinstance(source, Path):
        return Image.open(source)
    return Image.open(io.BytesIO(source if isinstance(source, bytes) else source()))


def read_header(source: Source) -> tuple[tuple[int, int], bool]:
    """(width, height) and whether the picture is grey, from its header alone; raises on an unreadable file."""
    with _open(source) as image:
        return image.size, image.mode in GREY_MODES


def decode(source: Source, channels: int, size: int) -> np.ndarray:
    """One picture as a (channels, size, size) uint8 array."""
    with _open(source) as image:
        image.draft("L" if channels == 1 else "RGB", (size, size))  # JPEG: decode at a reduced scale when it can
        if image.mode == "P" or image.mode.endswith("A"):
            image = image.convert("RGBA")
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (size, size):
            image = ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def describe(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:120]
