"""The Space's model store: one load per name however many ask at once, and a cache bounded in bytes."""

from __future__ import annotations

import threading
import time

import pytest

from vae_hub import VariationalAutoencoder

pytest.importorskip("gradio")
from vae_hub.space import model_store  # noqa: E402
from vae_hub.space.model_store import ModelLoadError, ModelStore  # noqa: E402


@pytest.fixture
def folders(tmp_path):
    made = {}
    for name, hidden in (("a", 64), ("b", 64), ("c", 64)):
        VariationalAutoencoder(784, hidden, 2).save_pretrained(tmp_path / name)
        made[name] = tmp_path / name
    return made


def model_bytes(folder) -> int:
    return ModelStore({"m": folder}).get("m").nbytes


def test_the_cache_is_bounded_by_bytes_of_weights(folders):
    size = model_bytes(folders["a"])
    store = ModelStore(folders, max_cached=6, max_cached_bytes=2 * size + size // 2)  # room for two
    for name in ("a", "b", "c"):
        store.get(name)
    assert store.cached_names() == ["b", "c"]
    store.get("b")
    store.get("a")  # a is loaded again; c, the least recently used, makes room
    assert store.cached_names() == ["b", "a"]


def test_concurrent_requests_for_one_name_share_one_load(folders, monkeypatch):
    loads = []
    real = model_store.from_pretrained

    def slow_load(*args, **kwargs):
        loads.append(args[0])
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_store, "from_pretrained", slow_load)
    store = ModelStore(folders)
    got = []
    threads = [threading.Thread(target=lambda: got.append(store.get("a"))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(got) == 16 and all(m is got[0] for m in got)


def test_a_failed_load_is_shared_by_those_waiting_and_not_cached(tmp_path, monkeypatch):
    calls = []

    def failing(*args, **kwargs):
        calls.append(args[0])
        time.sleep(0.3)
        raise model_store.CheckpointError("broken on purpose")

    monkeypatch.setattr(model_store, "from_pretrained", failing)
    store = ModelStore({"x": tmp_path})
    errors = []

    def get() -> None:
        try:
            store.get("x")
        except ModelLoadError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(errors) == 4 and all("broken on purpose" in e for e in errors)
    with pytest.raises(ModelLoadError):
        store.get("x")
    assert len(calls) == 2  # tried again: a failure is not remembered


def test_the_space_limit_comes_from_the_environment(folders, monkeypatch):
    monkeypatch.setenv("VAE_HUB_MAX_MODEL_MB", "0.05")  # 52 KB: less than the 200 KB these models take
    with pytest.raises(ModelLoadError, match=r"\(\d+\.\d KB\), over the size limit of 51\.2 KB"):
        ModelStore(folders).get("a")
    monkeypatch.delenv("VAE_HUB_MAX_MODEL_MB")
    assert ModelStore(folders).max_model_bytes == 256 * 2**20


def test_card_pictures_are_inlined_only_when_they_are_pngs_beside_the_card(folders):
    import io

    from PIL import Image

    folder = folders["a"]
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="PNG")
    (folder / "samples.png").write_bytes(buffer.getvalue())
    (folder / "fake.png").write_text("not a png")
    (folder.parent / "outside.png").write_bytes(buffer.getvalue())
    (folder / "README.md").write_text(
        "# card\n\nSamples:\n\n![Samples](samples.png)\n\n![Fake](fake.png)\n\n![Out](../outside.png)\n\n"
        "![Remote](https://example.com/x.png)\n"
    )
    card = ModelStore({"m": folder}).get("m").card
    assert card.count("](data:image/png;base64,") == 1 and "![Samples](data:image/png;base64," in card
    assert "fake.png" not in card and "outside.png" not in card and "example.com" not in card


def test_convolutional_models_are_served_in_channels_last_with_the_same_outputs(tmp_path):
    import torch

    from vae_hub import ConvVAE

    model = ConvVAE(image_shape=(1, 28, 28), latent_dim=4, base_channels=8, hidden_dim=32).eval()
    model.save_pretrained(tmp_path / "conv")
    served = ModelStore({"conv": tmp_path / "conv"}).get("conv").model
    convs = [m for m in served.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]
    conv = next(m for m in convs if m.kernel_size[0] > 1)  # where the two layouts differ
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    z, x = torch.randn(5, 4), torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(served.decode(z), model.decode(z), atol=1e-5, rtol=0)
        torch.testing.assert_close(served.encode(x)[0], model.encode(x)[0], atol=1e-5, rtol=0)
    served.save_pretrained(tmp_path / "again")  # the layout does not reach the file: weights are saved contiguous
    assert ConvVAE.from_pretrained(tmp_path / "again").state_dict()["fc_mu.weight"].is_contiguous()


def test_the_bundled_folder_and_the_space_app_offer_the_same_models_the_conv_vae_first():
    from helpers import SPACE, import_app

    found = model_store.find_models([str(SPACE / "models")])
    assert list(found)[0] == "conv-fashion-mnist"  # what the README and docs/space.md call the default
    assert found == import_app().MODELS  # vae-hub space space/models and python space/app.py: one list


def test_order_json_lists_the_models_offered_and_a_wrong_one_is_a_clear_error(tmp_path):
    import json

    for name in ("b-vae", "a-vae", "c-vae"):
        VariationalAutoencoder(784, 8, 2).save_pretrained(tmp_path / name)
    assert list(model_store.find_models([str(tmp_path)])) == ["a-vae", "b-vae", "c-vae"]  # no order.json: by name
    (tmp_path / "order.json").write_text(json.dumps(["c-vae", "a-vae"]))
    assert list(model_store.find_models([str(tmp_path)])) == ["c-vae", "a-vae"]
    for bad, message in [(["../elsewhere"], "not a model folder in"), ({"c-vae": 1}, "must be a list"),
                         ([], "must be a list"), (["nope"], "names 'nope'")]:  # fmt: skip
        (tmp_path / "order.json").write_text(json.dumps(bad))
        with pytest.raises(ModelLoadError, match=message):
            model_store.find_models([str(tmp_path)])


def test_a_vq_vae_is_refused_by_name_and_the_store_goes_on(tmp_path, folders):
    from vae_hub import VQVAE

    VQVAE(num_codes=8, code_dim=2, base_channels=4, res_blocks=0, prior_width=8, prior_layers=1, prior_heads=1
          ).save_pretrained(tmp_path / "vq")  # fmt: skip
    store = ModelStore({"vq": tmp_path / "vq", "a": folders["a"]})
    with pytest.raises(
        ModelLoadError, match="could not load 'vq': this Space works with VAEs .* this model is a VQVAE"
    ):
        store.get("vq")
    assert store.get("a").model is not None
