"""Pictures that ship with the package, so the Space's lab, the tutorials and quick experiments work offline:
the first 2,000 Fashion-MNIST and 1,000 MNIST test images (for latent maps) and the first 4,000 Fashion-MNIST
training images (for the live training tab and the tutorials).

``python -m vae_hub.data.bundled FASHION_MNIST_DIR MNIST_DIR`` rebuilds ``bundled.safetensors`` from the IDX files
(see the data docs for where they come from).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from .named_sets import load_dataset

SAMPLES = Path(__file__).resolve().parent / "bundled.safetensors"
MAP_IMAGES = 2000  # test images per data set, drawn on latent maps
TRAIN_IMAGES = 4000  # Fashion-MNIST training images for the live training tab
SOURCES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST"}


@dataclass(frozen=True)
class BundledImages:
    """Bundled pictures: uint8 ``images`` (N, 1, 28, 28) in 0..255, int64 ``labels`` (N,) and the ``class_names``."""

    images: Tensor
    labels: Tensor
    class_names: list[str]

    def unit(self) -> Tensor:
        """The images as floats, as the models take them.

        Returns:
            (N, 1, 28, 28) float32 in [0, 1].
        """
        return self.images.float() / 255


@cache
def bundled_images(dataset: str, split: str = "test") -> BundledImages:
    """The bundled images of ``dataset`` ("fashion-mnist" or "mnist").

    Args:
        dataset: ``"fashion-mnist"`` or ``"mnist"``.
        split: ``"test"`` (2,000 Fashion-MNIST or 1,000 MNIST images) or ``"train"`` (4,000 images, Fashion-MNIST only).

    Returns:
        The images, their labels and class names; ``.unit()`` gives float images in [0, 1] for a model.

    Raises:
        KeyError: for a data set or split that is not bundled.
    """
    key = f"{dataset}/{split}"
    with safe_open(SAMPLES, framework="pt") as f:
        names = json.loads(f.metadata()["class_names"])
        stored = set(f.keys())
        if f"{key}/images" not in stored:
            have = ", ".join(k.removesuffix("/images") for k in sorted(stored) if k.endswith("/images"))
            raise KeyError(f"no bundled {split} images of {dataset!r}; bundled are {have}")
        return BundledImages(f.get_tensor(f"{key}/images"), f.get_tensor(f"{key}/labels"), names[dataset])


def build(fashion_dir: Path, mnist_dir: Path, out: Path = SAMPLES) -> None:
    """Write the sample file: the first test images of each data set and the first Fashion-MNIST training images."""
    tensors, names = {}, {}
    for name, folder in (("fashion-mnist", fashion_dir), ("mnist", mnist_dir)):
        test = load_dataset(name, folder, train=False, download=False)
        tensors[f"{name}/test/images"] = test.images[:MAP_IMAGES].contiguous()
        tensors[f"{name}/test/labels"] = test.labels[:MAP_IMAGES].contiguous()
        names[name] = test.class_names
    train = load_dataset("fashion-mnist", fashion_dir, train=True, download=False)
    tensors["fashion-mnist/train/images"] = train.images[:TRAIN_IMAGES].contiguous()
    tensors["fashion-mnist/train/labels"] = train.labels[:TRAIN_IMAGES].contiguous()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"class_names": json.dumps(names)})
    print(f"wrote {out}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fashion_mnist_dir", type=Path, nargs="?", default=Path("/usr/share/datasets/fashion-mnist"))
    p.add_argument("mnist_dir", type=Path, nargs="?", default=Path("../shared/data/mnist-5k"))
    args = p.parse_args()
    build(args.fashion_mnist_dir, args.mnist_dir)
