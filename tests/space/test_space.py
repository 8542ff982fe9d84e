"""The Space, launched on 127.0.0.1 and driven through gradio_client: every api_name, good and bad input."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import SPACE, free_port, import_app, launch
from PIL import Image

from vae_hub.space.endpoints import MAX_SLIDERS
from vae_hub.space.sessions import SwitchedSessions

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

MODEL = "conv-fashion-mnist"  # 1x28x28, 16-D latent space
TILE = 28 + 2  # a grid tile: image plus padding


@pytest.fixture(scope="module")
def client():
    app, demo, url = launch()
    yield Client(url, verbose=False)
    demo.close()


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path))


def write_png(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def stroke(size: int = 96, mode: str = "RGB") -> np.ndarray:
    """A dark diagonal stroke on white paper (how people draw), as RGB or RGBA on a transparent canvas."""
    channels = 4 if mode == "RGBA" else 3
    image = np.zeros((size, size, channels), np.uint8) if mode == "RGBA" else np.full((size, size, 3), 255, np.uint8)
    for i in range(size // 5, size - size // 5):
        image[i, i - 4 : i + 4, :3] = 0
        if mode == "RGBA":
            image[i, i - 4 : i + 4, 3] = 255
    return image


def drawing(path: str) -> dict:
    """A Sketchpad payload whose composite is the given picture."""
    return {"background": None, "layers": [], "composite": handle_file(path), "id": None}


# --- good input ----------------------------------------------------------------------------------------------
def test_generate_gives_a_grid_that_depends_on_the_seed(client):
    a = pixels(client.predict(MODEL, 16, 1.0, 0, api_name="/generate"))
    assert a.shape == (4 * TILE + 2, 4 * TILE + 2) and a.dtype == np.uint8
    assert np.array_equal(a, pixels(client.predict(MODEL, 16, 1.0, 0, api_name="/generate")))
    assert not np.array_equal(a, pixels(client.predict(MODEL, 16, 1.0, 1, api_name="/generate")))
    assert pixels(client.predict(MODEL, 64, 0.5, 3, api_name="/generate")).shape == (8 * TILE + 2, 8 * TILE + 2)
    assert pixels(client.predict(MODEL, 1, 0.0, 0, api_name="/generate")).shape == (TILE + 2, TILE + 2)


def test_reconstruct_an_upload(client, tmp_path):
    seen, recon, posterior, text, chart, sample = client.predict(
        MODEL, None, handle_file(write_png(tmp_path / "s.png", stroke())), 0, api_name="/reconstruct"
    )
    seen, recon, sample = pixels(seen), pixels(recon), pixels(sample)
    assert sample.shape == (28, 28) and set(np.unique(sample)) <= {0, 255}, "Bernoulli pixels: each on or off"
    assert np.abs(sample.astype(float) / 255 - recon / 255).mean() < 0.3, "drawn around the blurry mean"
    assert seen.shape == recon.shape == (28, 28)
    assert seen[0].max() < 30 and seen.max() > 200, "light-on-dark like the training data, border black"
    assert np.abs(seen.astype(float) - recon).mean() < 60, "the reconstruction resembles the input"
    assert pixels(posterior).shape == (TILE + 2, 8 * TILE + 2)
    assert "ELBO" in text and "KL" in text
    rows = chart["data"]
    assert len(rows) == 16 and all(kl >= 0 for _, kl in rows)
    again = client.predict(MODEL, None, handle_file(str(tmp_path / "s.png")), 1, api_name="/reconstruct")
    assert np.array_equal(recon, pixels(again[1])), "the posterior mean does not depend on the seed"
    assert not np.array_equal(pixels(posterior), pixels(again[2])), "posterior samples do"


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_reconstruct_a_drawing_rgb_or_rgba(client, tmp_path, mode):
    path = write_png(tmp_path / "d.png", stroke(280, mode))
    seen, recon, *_ = client.predict(MODEL, drawing(path), None, 0, api_name="/reconstruct")
    seen = pixels(seen)
    assert seen.shape == (28, 28) and seen[0].max() < 30 and seen.max() > 200
    diagonal = [seen[i, i] for i in range(6, 22)]
    assert min(diagonal) > 100, "the stroke runs along the diagonal"


def test_a_colour_upload_becomes_grey(client, tmp_path):
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0] = 200  # a red background
    image[16:48, 28:36] = (0, 255, 0)  # a green bar
    seen = pixels(
        client.predict(MODEL, None, handle_file(write_png(tmp_path / "c.png", image)), 0, api_name="/reconstruct")[0]
    )
    assert seen.shape == (28, 28) and seen[14, 14] > 200 and seen[14, 4] < 30


def test_interpolate_between_seeds_and_between_images(client, tmp_path):
    a = pixels(client.predict(MODEL, "seeds", None, None, 1, 2, "slerp", 10, api_name="/interpolate"))
    assert a.shape == (TILE + 2, 10 * TILE + 2)
    b = pixels(client.predict(MODEL, "seeds", None, None, 1, 3, "slerp", 10, api_name="/interpolate"))
    c = pixels(client.predict(MODEL, "seeds", None, None, 1, 2, "lerp", 10, api_name="/interpolate"))
    assert np.array_equal(a[:, : TILE + 2], b[:, : TILE + 2]), "the same start"
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    first = write_png(tmp_path / "a.png", stroke())
    second = write_png(tmp_path / "b.png", np.ascontiguousarray(stroke()[:, ::-1]))
    strip = pixels(
        client.predict(MODEL, "images", drawing(first), drawing(second), 0, 0, "lerp", 5, api_name="/interpolate")
    )
    assert strip.shape == (TILE + 2, 5 * TILE + 2)
    assert not np.array_equal(strip[:, 2:30], strip[:, -30:-2]), "the two ends differ"


def test_decode_a_latent_vector(client):
    zero = pixels(client.predict(MODEL, ", ".join(["0"] * 16), api_name="/decode"))
    other = pixels(client.predict(MODEL, " ".join(["1.5"] * 16), api_name="/decode"))
    assert zero.shape == other.shape == (28, 28) and not np.array_equal(zero, other)


def test_generate_with_the_page_defaults_gives_the_samples_the_page_opens_with(client):
    first = pixels(client.predict(MODEL, api_name="/generate"))
    assert np.array_equal(first, pixels(client.predict(MODEL, 16, 1.0, 0, api_name="/generate")))
    assert not np.array_equal(first, pixels(client.predict(MODEL, 16, 1.0, 1, api_name="/generate")))


def test_every_endpoint_needs_only_its_essential_inputs(client, tmp_path):
    """The model in use, counts, seeds and methods default; /reconstruct takes a file or a drawing."""
    assert pixels(client.predict(api_name="/generate")).shape == (4 * TILE + 2, 4 * TILE + 2)  # 16 samples
    assert pixels(client.predict(n=2, api_name="/generate")).shape == (TILE + 2, 2 * TILE + 2)
    picture = write_png(tmp_path / "s.png", stroke())
    from_file = client.predict(upload=handle_file(picture), api_name="/reconstruct")
    from_drawing = client.predict(drawing=drawing(picture), api_name="/reconstruct")
    assert np.array_equal(pixels(from_file[0]), pixels(from_drawing[0])) and "ELBO" in from_file[3]
    assert from_file[3].startswith("Reconstructed: **the uploaded picture**")  # the result says which input it used
    assert from_drawing[3].startswith("Reconstructed: **your drawing**")
    both = client.predict(drawing=drawing(picture), upload=handle_file(picture), api_name="/reconstruct")
    assert both[3].startswith("Reconstructed: **the uploaded picture**")  # the API's rule; the page clears the other
    assert pixels(client.predict(api_name="/interpolate")).shape == (TILE + 2, 10 * TILE + 2)  # seeds 1 and 2
    strip = pixels(client.predict(seed_a=5, seed_b=6, steps=4, api_name="/interpolate"))
    assert strip.shape == (TILE + 2, 4 * TILE + 2)
    images = client.predict(ends="images", drawing_a=drawing(picture), drawing_b=drawing(picture), steps=3,
                            api_name="/interpolate")  # fmt: skip
    assert pixels(images).shape == (TILE + 2, 3 * TILE + 2)
    assert pixels(client.predict(z_text=", ".join(["0"] * 16), api_name="/decode")).shape == (28, 28)


def test_view_api_gives_defaults_and_a_description_for_each_endpoint(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    required = {name: {p["parameter_name"] for p in ep["parameters"] if not p["parameter_has_default"]}
                for name, ep in endpoints.items()}  # fmt: skip
    assert required == {"/generate": set(), "/reconstruct": set(), "/interpolate": set(), "/decode": {"z_text"},
                        "/load_model": {"name"}, "/latent_map": set(), "/decode_point": set(), "/compare": set(),
                        "/collapse": set(), "/remedies": set(), "/train_live": set()}  # fmt: skip
    generate = {p["parameter_name"]: p["parameter_default"] for p in endpoints["/generate"]["parameters"]}
    assert generate == {"model_name": MODEL, "n": 16, "temperature": 1.0, "seed": 0, "label": "every class"}
    for name, ep in endpoints.items():
        assert len(ep["description"]) > 30, f"{name} has no description"


def test_the_endpoints_are_mcp_tools_that_return_images():
    mcp = pytest.importorskip("mcp")
    import asyncio
    import base64
    import io

    from mcp.client.streamable_http import streamable_http_client

    async def use_tools(url: str) -> tuple[dict, list]:
        async with streamable_http_client(url) as (read, write, _), mcp.ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            result = await session.call_tool("generate", {"n": 4, "seed": 3})
            return tools, result.content

    app, demo, url = launch(mcp_server=True)
    try:
        tools, content = asyncio.run(use_tools(f"{url}gradio_api/mcp/"))
    finally:
        demo.close()
    assert {"generate", "reconstruct", "interpolate", "decode", "load_model"} <= set(tools)
    generate = tools["generate"]
    assert "prior" in generate.description and "PNG grid" in generate.description
    assert set(generate.inputSchema["properties"]) == {"model_name", "n", "temperature", "seed", "label"}
    assert "1 to 64" in generate.inputSchema["properties"]["n"]["description"]
    (image,) = [c for c in content if c.type == "image"]
    assert image.mimeType == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(base64.b64decode(image.data))))
    assert grid.shape[:2] == (2 * TILE + 2, 2 * TILE + 2), "4 samples in a 2x2 grid"


def test_load_model_switches_and_shows_the_2d_manifold(client):
    view = client.predict("mlp-2d-fashion-mnist", api_name="/load_model")
    name, summary, card, metrics, z, decoded, latent_map, caption, *sliders = view
    assert name == "mlp-2d-fashion-mnist" and "2-D latent space" in summary
    assert pixels(latent_map).shape == (15 * 28, 15 * 28) and "2-D latent space" in caption
    assert metrics["latent_dim"] == 2 and "nll" in metrics and "## " in card
    assert metrics["nll"] == round(metrics["nll"], 2) and metrics["loss"] == round(metrics["loss"], 2)
    assert card.count("](data:image/png;base64,") == 3  # samples, reconstructions, training curves: shown inline
    assert "samples.png" not in card
    assert z == "0.00, 0.00"
    assert pixels(client.predict("mlp-2d-fashion-mnist", "0.5, -1", api_name="/decode")).shape == (28, 28)
    conv = client.predict(MODEL, api_name="/load_model")
    assert conv[0] == MODEL and pixels(conv[6]).shape == (8 * TILE + 2, 9 * TILE + 2), "a traversal of 8 dims"


COND = "cmlp-fashion-mnist"  # the conditional model: one class per request


def test_a_conditional_model_draws_the_class_asked_for(client, tmp_path):
    view = client.predict(COND, api_name="/load_model")
    assert view[0] == COND and "conditional" in view[2]
    label, class_a, class_b = (u["value"] for u in view[8 + MAX_SLIDERS : 11 + MAX_SLIDERS])
    assert (label, class_a, class_b) == ("every class", "T-shirt/top", "Ankle boot")
    assert view[8 + MAX_SLIDERS]["visible"] and "Sneaker" in str(view[8 + MAX_SLIDERS]["choices"])
    assert "knows clothes" in view[11 + MAX_SLIDERS]  # what to draw for this model
    assert pixels(view[12 + MAX_SLIDERS]).shape == (4 * TILE + 2, 4 * TILE + 2)  # its own 16 default samples
    assert all(v in (None, "") for v in view[13 + MAX_SLIDERS :])  # the previous model's outputs are cleared
    sneakers = pixels(client.predict(COND, 8, 1.0, 0, "Sneaker", api_name="/generate"))
    bags = pixels(client.predict(COND, 8, 1.0, 0, "Bag", api_name="/generate"))
    assert sneakers.shape == bags.shape == (3 * TILE + 2, 3 * TILE + 2) and not np.array_equal(sneakers, bags)
    mixed = pixels(client.predict(COND, 16, 1.0, 0, api_name="/generate"))  # every class in turn
    assert mixed.shape == (4 * TILE + 2, 4 * TILE + 2)
    strip = client.predict(COND, "classes", None, None, 3, 2, "slerp", 6, "every class", "Sneaker", "Ankle boot",
                           api_name="/interpolate")  # fmt: skip
    assert pixels(strip).shape == (TILE + 2, 6 * TILE + 2)
    boot = str(SPACE.parent / "vae_hub" / "space" / "examples" / "fashion-ankle-boot.png")
    seen, recon, posterior, text, chart, _ = client.predict(COND, None, handle_file(boot), 0, api_name="/reconstruct")
    assert "Read as **" in text and "the class under which its ELBO is highest" in text
    as_bag = client.predict(COND, None, handle_file(boot), 0, "Bag", api_name="/reconstruct")
    assert "Read as" not in as_bag[3] and not np.array_equal(pixels(recon), pixels(as_bag[1]))
    read_as = text.split("Read as **")[1].split("**")[0]  # on the latent map, the boot is placed under that class
    _, caption = client.predict(COND, drawing(boot), api_name="/latent_map")
    assert f"The star is your drawing, read as {read_as} (the class under which its ELBO is highest)" in caption
    assert pixels(client.predict(COND, ", ".join(["0"] * 20), "Trouser", api_name="/decode")).shape == (28, 28)
    with pytest.raises(AppError, match="class must be one of T-shirt/top, Trouser"):
        client.predict(COND, 4, 1.0, 0, "Cow", api_name="/generate")
    with pytest.raises(AppError, match="is not a conditional model: leave the class empty"):
        client.predict(MODEL, 4, 1.0, 0, "Sneaker", api_name="/generate")
    with pytest.raises(AppError, match="Between: 'classes' needs a conditional model"):
        client.predict(MODEL, "classes", None, None, 1, 2, "slerp", 5, api_name="/interpolate")
    client.predict(MODEL, api_name="/load_model")  # back to the default model for the other tests


# --- bad input -----------------------------------------------------------------------------------------------
def not_a_vae_hub_model(tmp_path: Path) -> str:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    return str(folder)


BAD_INPUTS = {
    "empty canvas": ("/reconstruct", lambda p: (MODEL, None, None, 0), "the canvas is empty"),
    "empty canvas payload": (
        "/reconstruct",
        lambda p: (MODEL, {"background": None, "layers": [], "composite": None, "id": None}, None, 0),
        "the canvas is empty",
    ),
    "blank drawing": (
        "/reconstruct",
        lambda p: (MODEL, drawing(write_png(p / "w.png", np.full((64, 64, 3), 255, np.uint8))), None, 0),
        "blank",
    ),
    "4000x4000 image": (
        "/reconstruct",
        lambda p: (MODEL, None, handle_file(write_png(p / "big.png", np.zeros((4000, 4000), np.uint8))), 0),
        "4000x4000 pixels; expected each side between 8 and 2048",
    ),
    "1x1 image": (
        "/reconstruct",
        lambda p: (MODEL, None, handle_file(write_png(p / "one.png", np.zeros((1, 1), np.uint8))), 0),
        "1x1 pixels",
    ),
    "not an image": (
        "/reconstruct",
        lambda p: (MODEL, None, handle_file(str(p / "notes.txt")), 0),
        "Upload: expected a PNG, JPEG, WebP, BMP or GIF picture with each side between 8 and 2048 pixels; "
        "got the file 'notes.txt', which is not one",
    ),
    "not an image, drawn": (
        "/reconstruct",
        lambda p: (MODEL, drawing(str(p / "notes.txt")), None, 0),
        "Draw: expected a drawing",
    ),
    "truncated png": (
        "/reconstruct",
        lambda p: (MODEL, None, handle_file(str(p / "cut.png")), 0),
        "'cut.png' could not be decoded as an image",
    ),
    "malformed drawing": ("/reconstruct", lambda p: (MODEL, "a string", None, 0), "Draw: expected a drawing"),
    "too many samples": ("/generate", lambda p: (MODEL, 65, 1.0, 0), "Number of samples: Value 65 is greater"),
    "zero samples": ("/generate", lambda p: (MODEL, 0, 1.0, 0), "Number of samples: Value 0 is less"),
    "samples not a number": ("/generate", lambda p: (MODEL, "many", 1.0, 0), "Number of samples: expected a number"),
    "negative temperature": ("/generate", lambda p: (MODEL, 4, -1.0, 0), "Temperature: Value -1.0 is less"),
    "negative seed": ("/generate", lambda p: (MODEL, 4, 1.0, -5), "Seed: Value -5 is less"),
    "seed not a number": ("/generate", lambda p: (MODEL, 4, 1.0, [1, 2]), "Seed: expected a number"),
    "huge seed": ("/generate", lambda p: (MODEL, 4, 1.0, 2**40), "Seed: Value 1099511627776 is greater"),
    "unknown path": ("/interpolate", lambda p: (MODEL, "seeds", None, None, 1, 2, "cubic", 5), "Path: "),
    "unknown ends": ("/interpolate", lambda p: (MODEL, "words", None, None, 1, 2, "slerp", 5), "Between: "),
    "one step": ("/interpolate", lambda p: (MODEL, "seeds", None, None, 1, 2, "slerp", 1), "Steps: Value 1 is less"),
    "missing image B": (
        "/interpolate",
        lambda p: (MODEL, "images", drawing(write_png(p / "a.png", stroke())), None, 0, 0, "slerp", 5),
        "image B: the canvas is empty",
    ),
    "z of the wrong size": ("/decode", lambda p: (MODEL, "1, 2, 3"), "z must hold 16 numbers"),
    "z not numbers": ("/decode", lambda p: (MODEL, "a, b"), "z must be 16 comma-separated numbers"),
    "z too large": ("/decode", lambda p: (MODEL, ", ".join(["1e9"] * 16)), "between -10 and 10"),
    "z not a string": ("/decode", lambda p: (MODEL, 7), "z must hold 16 numbers"),
    "unknown model": ("/generate", lambda p: ("no_such_model", 4, 1.0, 0), "could not load 'no_such_model'"),
    "missing folder": ("/load_model", lambda p: (str(p / "missing"),), "does not exist"),
    "not a vae-hub model": ("/load_model", not_a_vae_hub_model, "was not written by vae-hub"),
    "hub unreachable": ("/load_model", lambda p: ("someone/some-vae",), "could not reach the Hub"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_a_clear_error_and_the_app_keeps_serving(client, tmp_path, monkeypatch, caplog, capfd, case):
    caplog.set_level(logging.INFO, logger="vae-hub-space")
    if case in ("hub unreachable", "unknown model"):
        monkeypatch.setattr("time.sleep", lambda seconds: None)  # skip huggingface_hub's retry back-off
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "cut.png").write_bytes(Path(write_png(tmp_path / "full.png", stroke())).read_bytes()[:60])
    api, make_args, message = BAD_INPUTS[case]
    args = make_args(tmp_path)
    if case == "not a vae-hub model":
        args = (args,)
    with pytest.raises(AppError) as error:
        client.predict(*args, api_name=api)
    assert message in str(error.value)
    assert "Traceback" not in str(error.value) and "/tmp/gradio" not in str(error.value)
    good = pixels(client.predict(MODEL, 4, 1.0, 0, api_name="/generate"))
    assert good.shape == (2 * TILE + 2, 2 * TILE + 2)
    # the server log: one line naming the endpoint, the input and why; no traceback (nothing broke)
    lines = [r.getMessage() for r in caplog.records if r.name == "vae-hub-space" and "rejected" in r.getMessage()]
    assert len(lines) == 1 and api in lines[0].split(":")[0] and message in lines[0], lines
    assert not any(r.exc_info for r in caplog.records)
    assert "Traceback" not in capfd.readouterr().err


def test_a_server_error_logs_its_traceback(caplog):
    from vae_hub.space.inputs import user_errors

    @user_errors
    def generate() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(Exception, match="something went wrong on the server") as error:
        generate()
    assert error.value.print_exception is False  # logged below, once
    (record,) = [r for r in caplog.records if r.name == "vae-hub-space"]
    assert record.getMessage() == "unexpected error in /generate" and record.exc_info[1].args == ("a bug",)


def test_old_outputs_are_deleted():
    from vae_hub import space

    demo = space.build_demo(import_app().MODELS, delete_cache=(1, 1))
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        examples = {Path(f) for files in demo.temp_file_sets for f in files}  # kept: the page shows them
        Client(demo.local_url, verbose=False).predict(MODEL, 4, 1.0, 0, api_name="/generate")
        outputs = [Path(f) for files in demo.temp_file_sets for f in files if Path(f) not in examples]
        assert outputs and all(f.exists() for f in outputs)
        deadline = time.monotonic() + 10
        while any(f.exists() for f in outputs) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(f.exists() for f in outputs), "output files older than the age limit are still there"
    finally:
        demo.close()


def test_space_files():
    front = (SPACE / "README.md").read_text().split("---")[1]
    for key in (
        "title:",
        "sdk: gradio",
        "sdk_version:",
        "app_file: app.py",
        "models:",
        "license:",
        "short_description:",
    ):
        assert key in front
    # the Space is deployed with `vae-hub space deploy`, which writes its own requirements (tests/test_space_deploy.py)
    assert not (SPACE / "requirements.txt").exists(), "a requirements.txt here would be uploaded by hand and break"


def test_typed_z_moves_the_sliders_and_collapsed_dimensions_are_shown():
    from vae_hub.space.endpoints import COLLAPSED_KL, Features, latent_map
    from vae_hub.space.model_store import ModelStore

    features = Features(ModelStore(import_app().MODELS))
    loaded = features.store.get(MODEL)
    dims = loaded.dims_by_kl()
    z = [0.0] * 16
    z[dims[0]], z[dims[1]] = 1.5, -9.0
    values = features.sliders_for(MODEL, ", ".join(map(str, z)))
    assert len(values) == MAX_SLIDERS and values[:3] == [1.5, -3.0, 0.0]  # clipped to the sliders' range
    assert loaded.kl_per_dim[dims[-1]] < COLLAPSED_KL  # the bundled ConvVAE has collapsed dimensions
    _, caption = latent_map(loaded)
    assert f"z{dims[-1]} (KL 0.00)" in caption and "the last row is one" in caption


def test_the_first_view_of_the_page_does_not_overwrite_a_model_switch():
    """The page's load event (the default model's view) can finish after a model the visitor picked at once."""
    import gradio as gr

    demo = import_app().build_demo()
    fns = {fn.name: fn.fn for fn in demo.fns.values()}
    first_view, load_model = fns["first_view"], fns["load_model"]
    opened = first_view(MODEL, gr.Request(session_hash="only-opened"))
    in_use = next(c for c in opened if getattr(c, "label", None) == "Model in use")
    assert opened[in_use] == MODEL and not any(isinstance(v, dict) and v == gr.skip() for v in opened.values())
    assert load_model("mlp-fashion-mnist", gr.Request(session_hash="switched"))[in_use] == "mlp-fashion-mnist"
    late = first_view(MODEL, gr.Request(session_hash="switched"))  # finished after the switch: changes nothing
    assert set(late) == set(opened) and all(v == gr.skip() for v in late.values())
    marks = SwitchedSessions(limit=2)  # bounded: the oldest sessions' marks go first
    for session in ("a", "b", "c", None):
        marks.mark(session)
    assert "a" not in marks and "b" in marks and "c" in marks and None not in marks


# --- the lab -------------------------------------------------------------------------------------------------
MAP_SHAPE = (520, 600, 3)  # vae_hub.space.latent_plot: HEIGHT_PX x WIDTH_PX


def test_the_latent_map_marks_a_drawing_and_decodes_a_clicked_point(client, tmp_path):
    the_map, caption = client.predict(MODEL, api_name="/latent_map")
    assert pixels(the_map).shape == MAP_SHAPE and "PCA of the 16-D means" in caption and "2,000" in caption
    flat, caption = client.predict("mlp-2d-fashion-mnist", api_name="/latent_map")
    assert "the 2-D latent space itself" in caption
    marked, caption = client.predict(MODEL, drawing(write_png(tmp_path / "s.png", stroke())), api_name="/latent_map")
    assert "The star is your drawing, at (" in caption
    assert not np.array_equal(pixels(marked), pixels(the_map))
    near = pixels(client.predict(MODEL, 0.0, 0.0, api_name="/decode_point"))
    far = pixels(client.predict(MODEL, 3.0, -2.0, api_name="/decode_point"))
    assert near.shape == (28, 28) and not np.array_equal(near, far)
    digits, caption = client.predict("conv-mnist-5k", api_name="/latent_map")
    assert "1,000 MNIST test images" in caption


def test_the_autoencoder_has_gaps_where_its_vae_twin_has_none(client):
    *pictures, table = client.predict(0, "Trouser", "Bag", api_name="/compare")
    assert len(pictures) == 6
    assert pixels(pictures[0]).shape == MAP_SHAPE and pixels(pictures[1]).shape == (2 * TILE + 2, 8 * TILE + 2)
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in table.splitlines() if line.startswith("| ")}
    ae, vae = (float(rows[kind][0].strip().rstrip("%")) for kind in ("autoencoder", "VAE"))
    assert ae > vae + 10, f"random points in a gap: autoencoder {ae}%, VAE {vae}%"
    ae_mixed, vae_mixed = (float(rows[kind][3].strip().rstrip("%")) for kind in ("autoencoder", "VAE"))
    assert ae_mixed < ae / 2 and vae_mixed < vae, "draws from a mixture fitted to the codes land in fewer gaps"
    with pytest.raises(AppError, match="Path from: Value: Jacket is not in the list of choices"):
        client.predict(0, "Jacket", "Bag", api_name="/compare")


def test_posterior_collapse_grows_with_beta(client):
    outputs = client.predict(0, api_name="/collapse")
    summaries = outputs[0::4]
    assert len(outputs) == 16 and all("beta = " in s for s in summaries)
    active = [int(s.split("**: ")[1].split(" of ")[0]) for s in summaries]  # "16 of 16 active units", ...
    assert active == sorted(active, reverse=True) and active[0] > active[-1], active


def test_remedies_set_the_hierarchical_vae_and_the_vq_vae_beside_the_textbook_vae(client):
    *pictures, text = client.predict(0, api_name="/remedies")
    assert len(pictures) == 8  # per model: test images over their reconstructions, then its samples
    for recon, samples in zip(pictures[0::2], pictures[1::2], strict=True):
        assert pixels(recon).shape == (2 * TILE + 2, 8 * TILE + 2) and pixels(samples).shape == (TILE + 2, 8 * TILE + 2)
    rows = {line.split("|")[1].strip().split(" (")[0]: [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line}  # fmt: skip
    del rows["model"], rows["2-D latent model"]  # the two tables' headers
    textbook, hierarchical, vq = rows["Textbook VAE"], rows["Hierarchical VAE"], rows["VQ-VAE"]
    autoregressive = rows["Hierarchical VAE with an autoregressive decoder"]
    nll = {name: float(row[0].lstrip("≤ ").split(" ")[0]) for name, row in
           (("textbook", textbook), ("hierarchical", hierarchical), ("autoregressive", autoregressive))}  # fmt: skip
    assert nll["hierarchical"] < nll["textbook"] - 5 and vq[0].startswith("≤ ") and "(bound)" in vq[0]
    assert nll["autoregressive"] < nll["hierarchical"] - 3, nll
    sharpness = {name: float(row[2]) for name, row in rows.items() if len(row) == 3}
    assert sharpness["VQ-VAE"] > sharpness["Textbook VAE"], sharpness  # measurably sharper on the same images
    gap = {name: [float(c.split("%")[0]) for c in row] for name, row in rows.items() if len(row) == 2}
    ae, vae = gap["plain autoencoder"], gap["VAE"]
    assert ae[1] < ae[0] / 2 and vae[1] < vae[0] and "VAE with the VampPrior" in gap, gap  # the mixture fills holes
    assert "What each remedy addresses" in text
    assert not np.array_equal(pixels(pictures[1]), pixels(client.predict(1, api_name="/remedies")[1]))  # the seed


def test_train_one_live_then_use_and_download_it(client, tmp_path):
    import zipfile

    from vae_hub import from_pretrained

    job = client.submit(2, 1.0, 1, "bernoulli", 5, api_name="/train_live")
    status, curve, the_map, zipped, name = job.result(timeout=120)
    assert name.startswith("trained-") and "**Done" in status and "now the model in use" in status
    assert pixels(the_map).shape == MAP_SHAPE and len(curve["data"]) >= 1
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(tmp_path)
    assert from_pretrained(tmp_path / name).latent_dim == 2
    assert client.predict(name, api_name="/load_model")[0] == name  # every tab can use it
    assert pixels(client.predict(name, 4, 1.0, 0, api_name="/generate")).shape == (2 * TILE + 2, 2 * TILE + 2)
    with pytest.raises(AppError, match="Likelihood|likelihood"):
        client.predict(2, 1.0, 1, "poisson", 5, api_name="/train_live")


def live_workers() -> list[int]:
    """The live-training worker processes this test process (it serves the Space) has started."""
    pids = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if b"live_worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
    return pids


def started_training(client: Client) -> tuple[Any, int]:
    """A long live training through the API, once its worker process runs: the job and the worker's pid."""
    from gradio_client.utils import Status

    job = Client(client.src, verbose=False).submit(2, 1.0, 30, "bernoulli", 90, api_name="/train_live")
    deadline = time.time() + 60
    while (job.status().code != Status.ITERATING or not live_workers()) and time.time() < deadline:
        time.sleep(0.1)
    (pid,) = live_workers()
    return job, pid


def test_killing_the_live_training_process_is_a_message_and_the_space_keeps_serving(client):
    job, pid = started_training(client)
    assert pid != os.getpid()  # the Space serves from this process; the training is another
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(AppError, match=r"process ended unexpectedly \(it was stopped by SIGKILL\)"):
        job.result(timeout=60)
    assert pixels(client.predict(MODEL, 4, 1.0, 0, api_name="/generate")).shape == (2 * TILE + 2, 2 * TILE + 2)
    assert not live_workers()


def test_a_cancelled_live_training_ends_its_process(client):
    job, pid = started_training(client)
    job.cancel()
    deadline = time.time() + 15
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the worker process ended (and was reaped) when its request was cancelled"


def test_a_full_queue_answers_with_why_and_when_to_retry():
    import httpx

    from vae_hub import space
    from vae_hub.space.app import server_options

    demo = space.build_demo(import_app().MODELS, queue_size=1)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                **server_options(demo))  # fmt: skip
    try:
        running, pid = started_training(Client(demo.local_url, verbose=False))  # one training at a time: it runs
        waiting = Client(demo.local_url, verbose=False).submit(2, 1.0, 1, "bernoulli", 5, api_name="/train_live")
        deadline = time.time() + 30
        while len(demo._queue) < 1 and time.time() < deadline:  # the second waits: the queue is full
            time.sleep(0.1)
        fn = next(fn for fn in demo.fns.values() if fn.api_name == "train_live")
        body = {"data": [2, 1.0, 1, "bernoulli", 5], "fn_index": fn._id, "session_hash": "crowd", "trigger_id": None}
        answer = httpx.post(f"{demo.local_url}gradio_api/queue/join", json=body, timeout=30)
        assert answer.status_code == 429 and int(answer.headers["retry-after"]) >= 1
        message = answer.json()["detail"]
        assert message.startswith("The Space is busy: 1 request is already waiting") and "try again in about" in message
        running.cancel()
        status, *_ = waiting.result(timeout=120)  # the one that was queued is not lost
        assert status.startswith("**Done")
    finally:
        demo.close()


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def test_live_trainings_run_one_at_a_time_and_a_cancelled_one_stops_within_seconds(client):
    from gradio_client.utils import Status

    before = rss_mb()
    first = Client(client.src, verbose=False).submit(2, 1.0, 30, "bernoulli", 90, api_name="/train_live")
    second = Client(client.src, verbose=False).submit(2, 1.0, 1, "bernoulli", 5, api_name="/train_live")
    deadline = time.time() + 60
    while (first.status().code != Status.ITERATING or second.status().code != Status.IN_QUEUE) and (
        time.time() < deadline
    ):
        time.sleep(0.2)
    assert first.status().code == Status.ITERATING, "the first training streams its progress"
    waiting = second.status()
    assert waiting.code == Status.IN_QUEUE and waiting.rank == 0, waiting  # the second visitor waits, first in line
    first.cancel()
    cancelled = time.time()
    while second.status().code == Status.IN_QUEUE and time.time() - cancelled < 30:
        time.sleep(0.1)
    assert time.time() - cancelled < 10, "the cancelled run let the next one start within seconds"
    status, *_, name = second.result(timeout=120)
    assert "**Done" in status and name.startswith("trained-")
    assert rss_mb() - before < 300, "memory comes back (the models are a few MB; the map pictures are freed)"
