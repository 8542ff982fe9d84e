"""Small image folders and Hugging Face datasets on disk, drawn here, for the tests of your-own-images training."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (40, 60, 220)}


def shape_picture(kind: str, size: tuple[int, int], colour: tuple[int, int, int], seed: int) -> Image.Image:
    """A filled circle, square or triangle of ``colour`` on black, at a seeded position."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = Image.new("RGB", size)
    r = min(w, h) // 4
    cx, cy = (int(rng.integers(r, w - r + 1)), int(rng.integers(r, h - r + 1)))
    box = (cx - r, cy - r, cx + r, cy + r)
    draw = ImageDraw.Draw(image)
    if kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        (draw.ellipse if kind == "circle" else draw.rectangle)(box, fill=colour)
    return image


def write_folder(
    root: Path,
    *,
    per_class: int = 10,
    classes: tuple[str, ...] = ("circle", "square"),
    grey: bool = False,
    sizes: tuple[tuple[int, int], ...] = ((28, 28),),
    formats: tuple[str, ...] = ("png",),
    labelled: bool = True,
) -> Path:
    """``per_class`` pictures of each class, in ``root/<class>/`` when ``labelled``, else all in ``root``."""
    for c, kind in enumerate(classes):
        folder = root / kind if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour = list(COLOURS.values())[i % len(COLOURS)]
            picture = shape_picture(kind, sizes[i % len(sizes)], colour, seed=100 * c + i)
            picture = picture.convert("L") if grey else picture
            fmt = formats[i % len(formats)]
            picture.save(folder / f"{kind}_{i:03d}.{fmt}")
    return root


def add_bad_files(root: Path, folder: str = "") -> None:
    """One corrupt PNG (in ``root/folder``) and one text file (in ``root``): each must be skipped and named."""
    (root / folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "notes.txt").write_text("not a picture\n")


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def shapes_table(n: int, seed: int = 0) -> dict[str, list]:
    """Columns ``image`` (PNG bytes, 16x16 RGB) and ``label`` (0: circle, 1: square)."""
    images, labels = [], []
    for i in range(n):
        label = i % 2
        colour = list(COLOURS.values())[i % 3]
        images.append({"bytes": png_bytes(shape_picture(("circle", "square")[label], (16, 16), colour, seed + i))})
        labels.append(label)
    return {"image": images, "label": labels}


def write_save_to_disk(path: Path, n_train: int = 24, n_test: int = 8) -> Path:
    """A DatasetDict with train and test splits, an Image column and a ClassLabel column, via save_to_disk."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["circle", "square"])})
    data = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(shapes_table(n_train), features=features),
            "test": datasets.Dataset.from_dict(shapes_table(n_test, seed=1000), features=features),
        }
    )
    data.save_to_disk(str(path))
    return path


def write_parquet(path: Path, n: int = 30) -> Path:
    """One parquet file with columns ``picture`` (an Image feature) and ``kind`` (plain integers)."""
    import datasets

    table = shapes_table(n)
    features = datasets.Features({"picture": datasets.Image(), "kind": datasets.Value("int64")})
    datasets.Dataset.from_dict({"picture": table["image"], "kind": table["label"]}, features=features).to_parquet(
        str(path)
    )
    return path
