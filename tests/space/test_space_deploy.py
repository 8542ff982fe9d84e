"""vae-hub space deploy: a self-contained Space folder, uploaded in one commit to the loopback Hub, that installs
from its own requirements.txt into a fresh venv and serves from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_hub import FakeHub
from helpers import ROOT, free_port

import vae_hub
from vae_hub.cli import main

gradio = pytest.importorskip("gradio")
from gradio_client import Client  # noqa: E402

from vae_hub.space import read_models  # noqa: E402
from vae_hub.space.deploy.folder import SpaceFolderError  # noqa: E402

HUB_ENV_KEYS = ("HF_ENDPOINT", "HF_HOME", "HF_TOKEN", "PYTHONPATH", "VIRTUAL_ENV", "VAE_HUB_MODEL")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path | dict[str, bytes]]:
    """A local model folder, and the files of another model to serve as the Hub repo alice/vae."""
    root = tmp_path_factory.mktemp("models")
    vae_hub.VariationalAutoencoder(784, 16, 2).save_pretrained(root / "tiny-local")
    vae_hub.ConvVAE((1, 28, 28), latent_dim=2, base_channels=4, hidden_dim=16).save_pretrained(root / "hub-model")
    files = {p.name: p.read_bytes() for p in (root / "hub-model").iterdir() if p.is_file()}
    return {"local": root / "tiny-local", "hub": files}


def env_for(hub: FakeHub, tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment pointed at the loopback Hub, without this repository on any path."""
    env = {k: v for k, v in os.environ.items() if k not in HUB_ENV_KEYS}
    return env | {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": "hf_fake",
                  "HF_HUB_DISABLE_XET": "1", "GRADIO_ANALYTICS_ENABLED": "False", **extra}  # fmt: skip


def test_a_dry_run_writes_a_self_contained_space_folder(models, tmp_path, capsys):
    out = tmp_path / "space"
    code = main(["space", "deploy", "alice/demo", "--model", str(models["local"]), "--model", "alice/vae",
                 "--dry-run", "--folder", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"to {out}:" in printed and "models/tiny-local/model.safetensors" in printed
    assert "model alice/vae: alice/vae on the Hub" in printed
    expected = ["app.py", "requirements.txt", "README.md", "models.json", "models/tiny-local/config.json",
                "vae_hub/__init__.py", "vae_hub/space/app.py", "vae_hub/space/examples/drawn-7.png"]  # fmt: skip
    assert all((out / name).is_file() for name in expected)
    card = out / "vae_hub" / "MODEL_CARD.md"
    assert not card.is_symlink() and "{{" in card.read_text(), "the card template is copied, not linked"
    assert not list(out.rglob("__pycache__"))
    front = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert front["sdk"] == "gradio" and front["sdk_version"] == gradio.__version__ and front["app_file"] == "app.py"
    assert front["models"] == ["alice/vae"]
    requirements = (out / "requirements.txt").read_text()
    assert f"gradio[mcp]=={gradio.__version__}" in requirements and "torch" in requirements
    assert "git+" not in requirements and "vae-hub" not in requirements.replace("vae-hub's", "")
    assert read_models(out) == {"tiny-local": (out / "models" / "tiny-local").resolve(), "alice/vae": "alice/vae"}


def test_a_model_that_does_not_load_is_not_deployed(models, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "VariationalAutoencoder", "hidden_dim": "big"}))
    out = tmp_path / "space"
    code = main(["space", "deploy", "alice/demo", "--model", str(broken), "--dry-run", "--folder", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "model broken" in err and "cannot go into the Space" in err and "hidden_dim" in err
    assert not out.exists(), "no half-written Space folder"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run"], "--dry-run writes the Space folder only: give it one with --folder DIR"),
        (["--dry-run", "--folder", "{nonempty}"], "is not empty"),
        (["--model", "not a repo!", "--dry-run", "--folder", "{new}"], "is neither a model folder nor a Hub repo id"),
    ],
)
def test_deploy_says_what_is_wrong(models, tmp_path, capsys, args, message):
    (tmp_path / "nonempty").mkdir()
    (tmp_path / "nonempty" / "x").write_text("x")
    args = [a.replace("{nonempty}", str(tmp_path / "nonempty")).replace("{new}", str(tmp_path / "new")) for a in args]
    code = main(["space", "deploy", "alice/demo", "--model", str(models["local"]), *args])
    assert code == 2 and message in capsys.readouterr().err


def test_models_json_cannot_point_outside_the_space(tmp_path):
    (tmp_path / "models.json").write_text(json.dumps({"x": {"folder": "../../etc"}}))
    with pytest.raises(SpaceFolderError, match="outside the Space folder"):
        read_models(tmp_path)
    (tmp_path / "models.json").write_text(json.dumps({"x": ["a"]}))
    with pytest.raises(SpaceFolderError, match="must be"):
        read_models(tmp_path)


def test_deploy_uploads_one_commit_that_installs_and_serves_from_a_fresh_venv(models, tmp_path):
    with FakeHub() as hub:
        hub.repos["alice/vae"], hub.shas["alice/vae"] = dict(models["hub"]), "1" * 40
        env = env_for(hub, tmp_path)
        deployed = subprocess.run(
            [sys.executable, "-m", "vae_hub", "space", "deploy", "alice/demo", "--model", str(models["local"]),
             "--model", "alice/vae"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        assert f"uploaded to {hub.url}/spaces/alice/demo in one commit: {hub.url}/spaces/alice/demo/commit/" in (
            deployed.stdout
        )
        assert "models/tiny-local/model.safetensors" in deployed.stdout and "app.py" in deployed.stdout
        assert hub.space_sdk["spaces/alice/demo"] == "gradio"
        assert sum(r.startswith("POST /api/spaces/alice/demo/commit/") for r in hub.requests) == 1
        uploaded = hub.repos["spaces/alice/demo"]
        assert {"app.py", "requirements.txt", "README.md", "models.json", "vae_hub/__init__.py"} <= set(uploaded)

        space = tmp_path / "downloaded"
        space.mkdir()
        download = "import sys; from huggingface_hub import snapshot_download as d; d(sys.argv[1], repo_type='space', local_dir=sys.argv[2])"  # noqa: E501
        subprocess.run([sys.executable, "-c", download, "alice/demo", str(space)], env=env, check=True, timeout=120)
        assert {str(p.relative_to(space)) for p in space.rglob("*") if p.is_file() and ".cache" not in p.parts} == (
            set(uploaded)
        )

        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        python = str(venv / "bin" / "python")
        install = subprocess.run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=space,
                                 capture_output=True, text=True, timeout=1200)  # fmt: skip
        assert install.returncode == 0, install.stderr[-3000:]
        assert subprocess.run([python, "-m", "pip", "show", "vae-hub"], capture_output=True).returncode != 0
        where = subprocess.run([python, "-c", "import vae_hub; print(vae_hub.__file__)"], cwd=space, env=env,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert Path(where).is_relative_to(space) and not Path(where).is_relative_to(ROOT)

        port = free_port()
        log = (tmp_path / "space.log").open("w")
        server = subprocess.Popen([python, "app.py"], cwd=space, env=env | {"GRADIO_SERVER_PORT": str(port)},
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            client = wait_for(f"http://127.0.0.1:{port}/", server, tmp_path / "space.log")
            assert client.predict(api_name="/generate").endswith(".png")  # the bundled tiny-local, shown first
            assert client.predict("alice/vae", 4, api_name="/generate").endswith(".png")  # downloaded from the Hub
        finally:
            server.terminate()
            server.wait(30)
    assert "GET /alice/vae/resolve/main/model.safetensors" in hub.requests


def test_a_repo_id_that_names_no_model_is_refused_before_uploading(models, tmp_path):
    with FakeHub() as hub:
        deployed = subprocess.run(
            [sys.executable, "-m", "vae_hub", "space", "deploy", "alice/demo", "--model", "runs/typo"],
            capture_output=True, text=True, env=env_for(hub, tmp_path), cwd=tmp_path, timeout=300,
        )  # fmt: skip
        assert deployed.returncode == 2, deployed.stderr
        assert "runs/typo: not a model folder here, and no vae-hub model on the Hub" in deployed.stderr
        assert hub.repos == {} and not any("/commit/" in r for r in hub.requests)


def wait_for(url: str, server: subprocess.Popen, log: Path, seconds: float = 180) -> Client:
    deadline = time.monotonic() + seconds
    while True:
        assert server.poll() is None, f"the Space exited: {log.read_text()[-3000:]}"
        try:
            return Client(url, verbose=False)
        except Exception:
            assert time.monotonic() < deadline, f"the Space did not start: {log.read_text()[-3000:]}"
            time.sleep(1)


def test_a_folder_with_a_lab_takes_its_twins_and_lab_json_into_the_space(tmp_path, capsys):
    from vae_hub.space import read_lab

    folder = tmp_path / "models"
    for name in ("ae", "vae", "b1", "b4"):
        vae_hub.VariationalAutoencoder(784, 8, 2, deterministic=name == "ae").save_pretrained(folder / name)
    lab = {"autoencoder": "ae", "vae": "vae", "betas": {"1": "b1", "4": "b4"}}
    (folder / "lab.json").write_text(json.dumps(lab))
    out = tmp_path / "space"
    assert main(["space", "deploy", "alice/lab", "--model", str(folder), "--dry-run", "--folder", str(out)]) == 0
    copied = read_lab(out / "models")
    assert copied.autoencoder == ("ae", (out / "models" / "ae").resolve()) and list(copied.betas) == ["1", "4"]
    assert "lab=space.read_lab(" in (out / "app.py").read_text()
    (folder / "lab.json").write_text(json.dumps(lab | {"vae": "missing"}))
    code = main(["space", "deploy", "alice/lab", "--model", str(folder), "--dry-run", "--folder", str(tmp_path / "x")])
    assert code == 2 and "names 'missing', which is not a model folder" in capsys.readouterr().err
    (folder / "lab.json").write_text(json.dumps(lab | {"remedies": {"textbook": "vae", "vq": "vae"}}))
    code = main(["space", "deploy", "alice/lab", "--model", str(folder), "--dry-run", "--folder", str(tmp_path / "y")])
    err = capsys.readouterr().err
    expected = "optionally 'remedies': {'textbook': NAME, 'hierarchical': NAME, 'autoregressive': NAME, 'vq': NAME"
    assert code == 2 and expected in err, err
