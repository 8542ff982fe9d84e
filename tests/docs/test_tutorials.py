"""The tutorial notebooks run top to bottom, offline; the second publishes to a loopback Hub."""

import time
from pathlib import Path

import nbformat
import pytest
from fake_hub import FakeHub
from helpers import ROOT
from nbclient import NotebookClient

TUTORIALS = ROOT / "docs" / "tutorials"


def execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(TUTORIALS / name, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    print(f"{name} ran in {time.perf_counter() - start:.1f} s")
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> str:
    """The text every code cell printed or returned."""
    parts = []
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))


def test_notebooks_are_stored_without_outputs():
    for path in sorted(TUTORIALS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: strip the outputs"


@pytest.mark.slow
def test_vae_basics_runs(tmp_path):
    notebook = execute("vae-basics.ipynb", tmp_path)
    text = outputs(notebook)
    assert "torch.Size([4000, 1, 28, 28]) torch.Size([2000, 1, 28, 28])" in text
    assert "test -ELBO" in text and text.count("active units") == 4  # one line per beta
    assert images(notebook) >= 10  # every figure was drawn


@pytest.mark.slow
def test_your_images_to_a_space_runs_and_publishes(tmp_path, monkeypatch):
    with FakeHub() as hub:
        for key, value in {
            "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_fake", "HF_HOME": str(tmp_path / "hf-home"),
            "HF_HUB_DISABLE_XET": "1", "VAE_HUB_TUTORIAL_REPO": "tester/shapes-vae",
        }.items():  # fmt: skip
            monkeypatch.setenv(key, value)  # the kernel is a new process: it reads these when it imports the client
        notebook = execute("your-images-to-a-space.ipynb", tmp_path)
        uploaded = hub.repos["tester/shapes-vae"]
    run = tmp_path / "your-images-tutorial" / "shapes-vae"
    assert uploaded["model.safetensors"] == (run / "model.safetensors").read_bytes()
    assert not any(name.startswith("checkpoints/") for name in uploaded)
    text = outputs(notebook)
    assert "loaded back from the Hub: ConvVAE (3, 32, 32)" in text
    assert "test images: 300 from" in text  # evaluate rebuilt the held-out 10% from the stored data settings
    space = tmp_path / "your-images-tutorial" / "space"
    assert (space / "app.py").is_file() and (space / "models" / "shapes-vae" / "model.safetensors").is_file()
    assert "sdk: gradio" in (space / "README.md").read_text()
