"""`pip install` of the built wheel (not the checkout) into a fresh venv, then every command from another folder.

The venv reuses this environment's dependencies (torch etc.) through a path file, so that nothing is downloaded;
vae_hub itself comes only from the wheel, which is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fake_hub import FakeHub
from helpers import ROOT, free_port
from idx_data import write_idx


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a venv holding the vae-hub wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a clean copy: a stale build/ folder in the checkout must not reach the wheel
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs", "docs"
    )

    def ignore(folder: str, names: list[str]) -> set[str]:  # the bundled models (space/models), not vae_hub/models
        return skip(folder, names) | (
            {"models"} if Path(folder).name == "space" and Path(folder).parent == ROOT else set()
        )

    shutil.copytree(ROOT, source, ignore=ignore)
    wheel_command = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(source)]
    build = subprocess.run(
        [sys.executable, "-m", *wheel_command],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("vae_hub-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (purelib,) = venv.glob("lib/python*/site-packages")
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # dependencies, not vae_hub
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    return venv / "bin"


def command(bin_dir: Path, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir / "vae-hub"), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
        env={**os.environ, "PYTHONPATH": "", **(env or {})},
    )  # fmt: skip


def test_the_wheel_holds_the_package_and_not_the_checkout(installed, tmp_path):
    where = subprocess.run(
        [str(installed / "python"), "-c", "import vae_hub, vae_hub.space, vae_hub.cli; print(vae_hub.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(installed.parent) and not Path(where).is_relative_to(ROOT)
    files = [p.relative_to(Path(where).parent).as_posix() for p in Path(where).parent.rglob("*") if p.is_file()]
    weights = [f for f in files if f.endswith(".safetensors") and f != "data/bundled.safetensors"]
    assert "MODEL_CARD.md" in files and not any("space/models" in f for f in files) and not weights
    assert "data/bundled.safetensors" in files  # the lab's pictures: the Space works offline from the wheel
    help_text = command(installed, "train", "--help", cwd=tmp_path).stdout
    assert "--latent-dim LATENT_DIM" in help_text and "(default: 20)" in help_text


def test_train_evaluate_sample_publish_and_serve_from_the_wheel(installed, tmp_path):
    data, out = write_idx(tmp_path / "data"), tmp_path / "run"
    hf = {"HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": "hf_fake", "HF_HUB_DISABLE_XET": "1"}
    train = command(
        installed, "train", "--dataset", "mnist", "--data-dir", data, "--output-dir", out, "--cache-dir",
        tmp_path / "cache", "--no-download", "--no-progress", "--hidden-dim", "32", "--latent-dim", "4",
        "--epochs", "1", "--eval-k", "8", cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    assert "epoch 1: train loss" in train.stdout and (out / "model.safetensors").is_file()
    assert "vae-hub" in (out / "README.md").read_text()

    evaluate = command(installed, "evaluate", out, "--dataset", "mnist", "--data-dir", data, "--k", "10",
                       "--no-progress", "--output", tmp_path / "eval.json", cwd=tmp_path)  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert json.loads((tmp_path / "eval.json").read_text())["nll_k"] == 10

    sample = command(installed, "sample", out, "--n", "4", "--out", tmp_path / "s.png", cwd=tmp_path)
    assert sample.returncode == 0 and (tmp_path / "s.png").stat().st_size > 0, sample.stderr[-3000:]

    with FakeHub() as hub:
        publish = command(installed, "publish", out, "me/tiny", cwd=tmp_path, env={**hf, "HF_ENDPOINT": hub.url})
        assert publish.returncode == 0, publish.stderr[-3000:]
        assert hub.repos["me/tiny"]["model.safetensors"] == (out / "model.safetensors").read_bytes()

    port = free_port()
    env = {**os.environ, "PYTHONPATH": "", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [str(installed / "vae-hub"), "space", str(out), "--port", str(port)], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        page = wait_for(f"http://127.0.0.1:{port}/", server)
        assert "vae-hub" in page
        from gradio_client import Client

        grid = Client(f"http://127.0.0.1:{port}/", verbose=False).predict("run", 4, 1.0, 0, api_name="/generate")
        assert Path(grid).stat().st_size > 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(url: str, server: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"vae-hub space exited with {server.returncode}: {server.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"vae-hub space did not answer at {url} within {timeout} s")
