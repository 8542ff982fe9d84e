"""The Space in a real browser: Playwright (from PyPI) drives Debian's Chromium (never `playwright install`).

Screenshots go to $VAE_HUB_SCREENSHOTS when it is set (docs/screenshots/ holds the README's), else to a temp dir.
Without Chromium or Playwright the test is skipped, unless VAE_HUB_REQUIRE_BROWSER=1 (set by .ci/run) makes that
a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import launch

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


def need(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("VAE_HUB_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (VAE_HUB_REQUIRE_BROWSER=1)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def page():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed")
    need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    app, demo, url = launch()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)  # no wait for the page's first view: a model picked before it finishes wins (sessions.py)
        yield page
        browser.close()
    demo.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("VAE_HUB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_for_image(page, elem_id: str) -> None:
    """Wait until the output component shows a decoded, non-empty image."""
    image = page.locator(f"#{elem_id} img")
    image.first.wait_for(state="visible")
    page.wait_for_function(
        "(id) => { const img = document.querySelector(`#${id} img`);"
        " return img && img.complete && img.naturalWidth > 0; }",
        arg=elem_id,
    )


def wait_for_new_image(page, elem_id: str, old_src: str | None) -> None:
    """Wait until the output component shows a loaded image other than ``old_src``."""
    page.wait_for_function(
        "([id, old]) => { const img = document.querySelector(`#${id} img`);"
        " return img && img.src !== old && img.complete && img.naturalWidth > 0; }",
        arg=[elem_id, old_src],
    )


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def draw_stroke(page) -> None:
    """A slanted stroke on the Reconstruct tab's canvas, like a "1" or a "/"."""
    canvas = page.locator("#canvas")
    canvas.get_by_role("button", name="Brush").click()
    box = canvas.locator("canvas").last.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 40, cy - 80)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(cx - 40 + 4 * i, cy - 80 + 8 * i)
    page.mouse.up()


def test_generate_draw_reconstruct_interpolate_explore(page, shots):
    # The page opens full: Generate shows the default model's samples before anything is clicked
    wait_for_image(page, "samples")
    assert page.get_by_label("Model in use").input_value() == "conv-fashion-mnist"
    page.screenshot(path=str(shots / "first-view.png"), full_page=True)
    first = page.locator("#samples img").first.get_attribute("src")
    page.get_by_label("Seed").first.fill("3")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_new_image(page, "samples", first)
    page.screenshot(path=str(shots / "generate.png"), full_page=True)

    # Reconstruct a stroke drawn on the canvas
    open_tab(page, "Reconstruct")
    draw_stroke(page)
    page.get_by_role("button", name="Reconstruct", exact=True).click()
    for elem_id in ("seen", "recon", "posterior"):
        wait_for_image(page, elem_id)
    page.get_by_text("ELBO = -").wait_for()
    assert "Reconstructed: your drawing" in page.locator("#elbo").inner_text()
    page.screenshot(path=str(shots / "reconstruct.png"), full_page=True)

    # One click on an example reconstructs it (no second click) and clears the drawing
    drawn = page.locator("#recon img").first.get_attribute("src")
    page.get_by_text("fashion sneaker", exact=True).click()
    wait_for_new_image(page, "recon", drawn)
    page.locator("#elbo").get_by_text("Reconstructed: the uploaded picture").wait_for()

    # Drawing again clears the upload: the drawing, touched last, is what is reconstructed
    sneaker = page.locator("#recon img").first.get_attribute("src")
    draw_stroke(page)
    page.locator("#upload img").wait_for(state="detached")
    page.get_by_role("button", name="Reconstruct", exact=True).click()
    wait_for_new_image(page, "recon", sneaker)
    page.locator("#elbo").get_by_text("Reconstructed: your drawing").wait_for()
    page.screenshot(path=str(shots / "reconstruct-drawn-after-example.png"), full_page=True)

    # Interpolate between two seeds, then between the two pictures of an example
    open_tab(page, "Interpolate")
    page.get_by_role("button", name="Interpolate", exact=True).click()
    wait_for_image(page, "strip")
    seeds = page.locator("#strip img").first.get_attribute("src")
    page.get_by_text("fashion ankle boot to fashion sneaker", exact=True).click()
    wait_for_new_image(page, "strip", seeds)
    page.screenshot(path=str(shots / "interpolate.png"), full_page=True)

    # Explore the 2-D model's latent space
    page.get_by_label("Bundled models").click()
    page.get_by_role("option", name="mlp-2d-fashion-mnist").click()
    page.get_by_text("mlp-2d-fashion-mnist: VariationalAutoencoder").wait_for()
    open_tab(page, "Explore")
    wait_for_image(page, "decoded")
    wait_for_image(page, "latent-map")
    page.get_by_text("The whole 2-D latent space", exact=False).wait_for()
    page.screenshot(path=str(shots / "explore.png"), full_page=True)

    # A model that does not exist: a message in the page, and the previous model stays in use
    page.get_by_label("...or any vae-hub model").fill("./no-such-model")
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("local folder ./no-such-model does not exist").first.wait_for()
    page.wait_for_timeout(800)  # the message slides in
    page.screenshot(path=str(shots / "bad-model.png"))
    assert page.get_by_label("Model in use").input_value() == "mlp-2d-fashion-mnist"

    # The conditional model: a class picker appears; one class is generated
    page.get_by_label("Bundled models").click()
    page.get_by_role("option", name="cmlp-fashion-mnist").click()
    page.get_by_text("cmlp-fashion-mnist: VariationalAutoencoder").wait_for()
    open_tab(page, "Generate")
    page.get_by_label("Class (a conditional model)").click()
    page.get_by_role("option", name="Sneaker", exact=True).click()
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_image(page, "samples")
    page.screenshot(path=str(shots / "generate-class.png"), full_page=True)
    assert page.get_by_label("Class (a conditional model)").input_value() == "Sneaker"

    for name in ("generate", "reconstruct", "interpolate", "explore", "generate-class"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


def test_the_lab_tabs(page, shots):
    """Latent space (click to decode), Autoencoder vs VAE, Posterior collapse, Remedies, and a live training."""
    page.get_by_label("Bundled models").click()
    page.get_by_role("option", name="mlp-2d-fashion-mnist").click()
    page.get_by_text("mlp-2d-fashion-mnist: VariationalAutoencoder").wait_for()
    open_tab(page, "Latent space")
    wait_for_image(page, "latent-space-map")
    box = page.locator("#latent-space-map img").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.45)  # on the trousers' side
    wait_for_image(page, "map-decoded")
    assert float(page.get_by_label("x (on the map)").input_value()) < 0
    page.screenshot(path=str(shots / "latent-space.png"), full_page=True)

    open_tab(page, "Autoencoder vs VAE")
    for elem_id in ("map-aut", "map-vae", "random-aut", "random-vae", "path-aut", "path-vae"):
        wait_for_image(page, elem_id)
    page.get_by_text("draws in a gap").first.wait_for()
    page.screenshot(path=str(shots / "autoencoder-vs-vae.png"), full_page=True)

    open_tab(page, "Posterior collapse")
    for tag in ("0_1", "1", "4", "16"):
        wait_for_image(page, f"collapse-recon-{tag}")
    page.get_by_text("active units (dimensions whose").first.wait_for()
    page.screenshot(path=str(shots / "posterior-collapse.png"), full_page=True)

    open_tab(page, "Remedies")
    for role in ("textbook", "hierarchical", "autoregressive", "vq"):
        wait_for_image(page, f"remedy-recon-{role}")
        wait_for_image(page, f"remedy-samples-{role}")
    page.get_by_text("What each remedy addresses").wait_for(timeout=120_000)
    page.screenshot(path=str(shots / "remedies.png"), full_page=True)

    open_tab(page, "Train one live")
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("It is now the model in use").wait_for(timeout=120_000)
    wait_for_image(page, "live-map")
    in_use = page.get_by_label("Model in use")
    page.wait_for_function("(el) => el.value.startsWith('trained-')", arg=in_use.element_handle())
    page.screenshot(path=str(shots / "train-live.png"), full_page=True)
    for name in ("latent-space", "autoencoder-vs-vae", "posterior-collapse", "remedies", "train-live"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


def test_the_rough_edges_are_gone(page, shots):
    """Switching model replaces the samples and clears other old outputs; the card shows its pictures; metrics are
    rounded; Interpolate shows only the chosen inputs and its canvases are ready to draw; Explore's text and sliders
    agree, one slider per latent dimension with the collapsed ones marked; the drawing hint names the digit model."""
    page.get_by_label("Bundled models").click()
    page.get_by_role("option", name="conv-mnist-5k").click()
    page.get_by_text("conv-mnist-5k: ConvVAE").wait_for()
    open_tab(page, "Generate")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_image(page, "samples")
    digits = page.locator("#samples img").first.get_attribute("src")
    page.get_by_label("Bundled models").click()
    page.get_by_role("option", name="mlp-fashion-mnist", exact=True).click()
    page.get_by_text("mlp-fashion-mnist: VariationalAutoencoder").wait_for()
    wait_for_new_image(page, "samples", digits)  # the old model's samples give way to the new model's

    open_tab(page, "Reconstruct")
    page.get_by_text("knows clothes").wait_for()
    assert page.get_by_text("pick conv-mnist-5k above").count() == 1  # drawing a digit: the hint names the model

    open_tab(page, "Interpolate")
    page.get_by_label("seeds").check()  # (an example of the first test chose "images")
    page.get_by_text("Image A (draw").first.wait_for(state="hidden")
    assert page.get_by_label("Seed A", exact=True).is_visible()
    page.get_by_label("images").check()
    page.get_by_text("Image A (draw").first.wait_for()
    assert not page.get_by_label("Seed A", exact=True).is_visible()
    assert page.locator("canvas").count() >= 2  # the canvases open ready to draw
    page.screenshot(path=str(shots / "interpolate-images.png"), full_page=True)
    page.get_by_label("seeds").check()

    open_tab(page, "Explore")
    sliders = page.locator("input[type=range]:visible")
    sliders.first.wait_for()
    assert sliders.count() == 20  # mlp-fashion-mnist: a 20-D latent space
    assert page.get_by_text("collapsed: changes nothing").count() >= 1  # 15 of its 20 dimensions are active
    page.get_by_text("(the last row is one)").wait_for()  # the traversal shows a collapsed dimension
    box = page.get_by_label("z (comma-separated; edit and press Enter)")
    box.fill(", ".join(["1.5"] * 20))
    box.press("Enter")
    page.wait_for_function("() => [...document.querySelectorAll('input[type=range]')].some(s => s.value === '1.5')")

    open_tab(page, "Model card")
    page.wait_for_function("() => [...document.querySelectorAll('img')].some(i => i.src.startsWith('data:image/png'))")
    metrics = page.locator(".json-holder, [data-testid='json']").first.inner_text()
    numbers = [part.strip(",") for part in metrics.split() if part.strip(",").replace(".", "", 1).isdigit()]
    assert numbers and not any("." in n and len(n.split(".")[1]) > 4 for n in numbers), numbers  # rounded
    page.screenshot(path=str(shots / "model-card.png"), full_page=True)
