"""Pictures in and out of a VAE: any image -> the (1, C, H, W) input a model expects; tensors -> uint8 arrays.

``prepare_image`` is what the Space does with a drawing or an upload: flatten transparency onto white paper, convert
to the model's channels, make single-channel pictures MNIST-style (light strokes on black, inverted when the
background is light), crop to the content, scale it into the frame with a margin and centre it.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .errors import ImageInputError

MIN_SIDE = 8  # pixels: smaller pictures hold too little to reconstruct
MAX_SIDE = 2048  # pixels: larger ones are refused before they are decoded
BLANK_RANGE = 0.05  # an image whose values span less than this is blank
MNIST_MARGIN = 4 / 28  # MNIST digits fill a 20x20 box in the middle of 28x28


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open a picture file, checking its size from the header before any pixel is decoded.

    Args:
        path: A PNG, JPEG, WebP, BMP or GIF file.

    Returns:
        The decoded picture, turned upright by its EXIF orientation.

    Raises:
        ImageInputError: For a file that is not a picture, a corrupt one, or a size outside [8, 2048] pixels a side.
    """
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            check_size(*image.size)
            image = ImageOps.exif_transpose(image)
            image.load()
    except ImageInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(
            f"{name!r} is not an image that can be read: upload a PNG, JPEG, WebP, BMP or GIF picture"
        ) from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt files
        reason = type(e).__name__
        raise ImageInputError(f"{name!r} could not be decoded as an image ({reason}): upload another file") from None
    return image


def check_size(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise ImageInputError(
            f"the image is {width}x{height} pixels; expected each side between {MIN_SIDE} and {MAX_SIDE} pixels"
        )


def to_pil(image: Image.Image | np.ndarray) -> Image.Image:
    """A PIL image from a PIL image or a (H, W), (H, W, 3) or (H, W, 4) array (uint8, or floats in [0, 1])."""
    if isinstance(image, Image.Image):
        check_size(*image.size)
        return image
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"expected an image, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageInputError(f"expected an image array of shape (H, W) or (H, W, 1|3|4), got {image.shape}")
    check_size(image.shape[1], image.shape[0])
    if image.dtype != np.uint8:
        values = image.astype(np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise ImageInputError("expected uint8 pixels or floats in [0, 1]")
        image = np.round(values * 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return Image.fromarray(image)


def flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite any transparency onto white: a transparent canvas is blank paper."""
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image


def prepare_image(
    image: Image.Image | np.ndarray,
    image_shape: tuple[int, int, int],
    *,
    invert: bool | None = None,
    margin: float = MNIST_MARGIN,
) -> Tensor:
    """Turn any picture into model input, the way the Space does.

    Transparency becomes white paper. Single-channel models get light-on-dark content (MNIST-style), cropped to its
    bounding box and centred with ``margin`` left free on each side; three-channel models get the whole picture
    resized.

    Args:
        image: A PIL image or an array (H, W), (H, W, 3) or (H, W, 4), grey, RGB or RGBA.
        image_shape: The model's (C, H, W).
        invert: Whether to invert a single-channel picture; None inverts when its border is light (dark strokes
            on paper).
        margin: The free border, a fraction of the side in [0, 0.5).

    Returns:
        (1, C, H, W) floats in [0, 1].

    Raises:
        ImageInputError: For a blank, tiny (< 8 px) or huge (> 2048 px) picture.
    """
    channels, height, width = image_shape
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    picture = flatten_alpha(to_pil(image)).convert("L" if channels == 1 else "RGB")
    values = np.asarray(picture, dtype=np.float32) / 255.0
    if values.max() - values.min() < BLANK_RANGE:
        raise ImageInputError("the image is blank (a single flat colour): draw or upload something")
    if channels == 3:
        resized = picture.resize((width, height), Image.Resampling.BOX if picture.width > width else Image.BILINEAR)
        return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
    if channels != 1:
        raise ImageInputError(f"pictures can be prepared for 1- or 3-channel models, not {channels} channels")
    if invert is None:
        border = np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])
        invert = float(np.median(border)) > 0.5
    if invert:
        values = 1.0 - values
    return torch.from_numpy(fit_content(values, height, width, margin))[None, None]


def fit_content(values: np.ndarray, height: int, width: int, margin: float) -> np.ndarray:
    """Crop light content on a dark background to its bounding box and centre it in a (height, width) frame."""
    values = values - values.min()
    values = values / values.max()
    rows, cols = np.nonzero(values > 0.2)
    crop = values[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    box_h, box_w = max(1, round(height * (1 - 2 * margin))), max(1, round(width * (1 - 2 * margin)))
    scale = min(box_h / crop.shape[0], box_w / crop.shape[1])
    new_h, new_w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = Image.fromarray(crop.astype(np.float32), mode="F").resize((new_w, new_h), resample)
    frame = np.zeros((height, width), dtype=np.float32)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    frame[top : top + new_h, left : left + new_w] = np.asarray(scaled)
    return np.clip(frame / max(float(frame.max()), 1e-6), 0.0, 1.0)  # thin strokes stay bright after shrinking


def to_uint8(images: Tensor) -> np.ndarray:
    """One image as a displayable array.

    Args:
        images: One image (C, H, W), values in [0, 1] (clipped).

    Returns:
        uint8 (H, W) for one channel, (H, W, C) for three.
    """
    array = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)


def image_grid(images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """Lay a batch of images out as one picture, as torchvision's ``make_grid`` does.

    Args:
        images: (N, C, H, W), values in [0, 1].
        nrow: Images per row (default: a square-ish grid).
        padding: Pixels between and around the images.
        pad_value: The grey of the padding, in [0, 1].

    Returns:
        uint8 (rows, cols) for one channel, (rows, cols, C) for three.
    """
    images = images.detach().float().cpu()
    n, c, h, w = images.shape
    cols = min(nrow or math.ceil(math.sqrt(n)), n)
    rows = math.ceil(n / cols)
    # torchvision's make_grid layout: a frame of ``padding`` around and between the cells
    grid = images.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for i, image in enumerate(images):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[:, top : top + h, left : left + w] = image
    return to_uint8(grid)


def save_grid(images: Tensor, path: str | os.PathLike[str], **grid_kwargs: Any) -> None:
    """Write ``image_grid(images)`` as a PNG.

    Args:
        images: (N, C, H, W), values in [0, 1].
        path: The PNG file to write.
        **grid_kwargs: ``nrow``, ``padding``, ``pad_value``, as for ``image_grid``.
    """
    Image.fromarray(image_grid(images, **grid_kwargs)).save(path)
