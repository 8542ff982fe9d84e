"""Pictures in and out of a model: vae_hub.images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vae_hub.errors import ImageInputError
from vae_hub.images import image_grid, open_image, prepare_image, to_uint8


def bar(size: int = 64, dark_on_light: bool = True) -> np.ndarray:
    image = np.full((size, size), 255 if dark_on_light else 0, np.uint8)
    image[size // 4 : 3 * size // 4, size // 2 - 3 : size // 2 + 3] = 0 if dark_on_light else 255
    return image


@pytest.mark.parametrize("dark_on_light", [True, False])
def test_single_channel_input_is_light_on_dark_centred_and_cropped(dark_on_light):
    x = prepare_image(bar(dark_on_light=dark_on_light), (1, 28, 28))
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() == 1
    assert x[0, 0, :4].max() == 0 and x[0, 0, :, :4].max() == 0, "the MNIST margin is black"
    assert x[0, 0, 14, 14] > 0.9, "the bar is in the middle and light"
    rows = torch.nonzero(x[0, 0].amax(1) > 0.5).flatten()
    assert rows.min() == 4 and rows.max() == 23, "scaled to fill the 20-pixel box"


def test_transparent_canvas_counts_as_white_paper():
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 28:36] = (0, 0, 0, 255)  # a black stroke; the rest is transparent (RGB 0, alpha 0)
    x = prepare_image(rgba, (1, 28, 28))
    assert x[0, 0, 14, 14] > 0.9 and x[0, 0, 0, 0] == 0


def test_three_channel_models_get_the_whole_picture_resized():
    picture = np.zeros((64, 96, 3), np.uint8)
    picture[..., 2] = 255
    x = prepare_image(picture, (3, 32, 32))
    assert x.shape == (1, 3, 32, 32)
    assert torch.allclose(x[0, 2], torch.ones(32, 32)) and x[0, :2].max() == 0


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((64, 64), 255, np.uint8), "blank"),
        (np.zeros((4, 4), np.uint8), "4x4 pixels; expected each side between 8 and 2048"),
        (np.zeros((8, 3000), np.uint8), "3000x8 pixels"),
        (np.zeros((64, 64, 2), np.uint8), "shape (H, W) or (H, W, 1|3|4)"),
        (np.full((64, 64), 3.0), "uint8 pixels or floats in [0, 1]"),
    ],
)
def test_bad_pictures_raise_clear_errors(array, message):
    with pytest.raises(ImageInputError) as error:
        prepare_image(array, (1, 28, 28))
    assert message in str(error.value)


def test_open_image_refuses_what_is_not_an_image_and_checks_size_before_decoding(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageInputError, match="'notes.txt' is not an image"):
        open_image(tmp_path / "notes.txt")
    Image.new("L", (4000, 4000)).save(tmp_path / "big.png")
    with pytest.raises(ImageInputError, match="4000x4000"):
        open_image(tmp_path / "big.png")
    Image.fromarray(bar()).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match="could not be decoded"):
        open_image(tmp_path / "cut.png")
    assert open_image(tmp_path / "ok.png").size == (64, 64)


def test_grids_and_uint8():
    images = torch.rand(10, 1, 28, 28)
    grid = image_grid(images, nrow=5)
    assert grid.shape == (2 * 30 + 2, 5 * 30 + 2) and grid.dtype == np.uint8
    assert np.array_equal(grid[2:30, 2:30], to_uint8(images[0]))
    assert image_grid(torch.rand(3, 3, 8, 8)).shape == (2 * 10 + 2, 2 * 10 + 2, 3)
