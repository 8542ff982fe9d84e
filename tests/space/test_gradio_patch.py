"""The Gradio cache patch is tied to the Gradio function it replaces: a changed function fails loudly."""

from __future__ import annotations

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
