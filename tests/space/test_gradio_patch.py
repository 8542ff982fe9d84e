"""The Gradio cache patch is tied to the Gradio function it replaces: a changed function fails loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio")
from gradio import processing_utils  # noqa: E402

from vae_hub.space import gradio_patches  # noqa: E402


def test_the_installed_gradio_is_one_the_patch_was_checked_against(monkeypatch):
    monkeypatch.setattr(processing_utils, "save_pil_to_cache", processing_utils.save_pil_to_cache)
    gradio_patches.apply()
    assert processing_utils.save_pil_to_cache is gradio_patches.save_pil_to_cache
    gradio_patches.apply()  # twice is fine


def test_a_gradio_whose_function_changed_is_refused(monkeypatch):
    def save_pil_to_cache(img, cache_dir, name="image", format="webp"):  # a "newer Gradio"
        return "somewhere"

    monkeypatch.setattr(processing_utils, "save_pil_to_cache", save_pil_to_cache)
    with pytest.raises(gradio_patches.GradioChangedError, match="was not written for"):
        gradio_patches.apply()
    assert processing_utils.save_pil_to_cache is save_pil_to_cache  # left as it was


def test_a_picture_handed_out_before_is_not_encoded_again_and_a_deleted_file_is_written_again(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    encoded = []
    encode = processing_utils.encode_pil_to_bytes
    monkeypatch.setattr(processing_utils, "encode_pil_to_bytes", lambda img, fmt: encoded.append(1) or encode(img, fmt))
    picture = Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28))
    first = gradio_patches.save_pil_to_cache(picture, str(tmp_path), format="png")
    again = gradio_patches.save_pil_to_cache(picture.copy(), str(tmp_path), format="png")
    assert first == again and len(encoded) == 1
    other = gradio_patches.save_pil_to_cache(Image.fromarray(np.zeros((28, 28), np.uint8)), str(tmp_path), format="png")
    assert other != first and len(encoded) == 2
    Path(first).unlink()  # Gradio's delete_cache removed it
    assert gradio_patches.save_pil_to_cache(picture, str(tmp_path), format="png") == first and Path(first).is_file()
    assert Image.open(first).tobytes() == picture.tobytes()
