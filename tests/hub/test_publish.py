"""Publishing over real HTTP to a loopback stand-in for the Hub, and pulling back in a fresh process."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from fake_hub import FakeHub
from helpers import ROOT, run_script, tiny_train_args
from idx_data import write_idx

import vae_hub

PULL = """
import sys, torch, vae_hub
model = vae_hub.from_pretrained(sys.argv[1])
z = torch.linspace(-2, 2, 3 * model.latent_dim).reshape(3, model.latent_dim)
print(type(model).__name__, repr(model.decode(z).flatten().tolist()))  # repr of floats round-trips exactly
"""


def _base():
    """This process's environment without its Hub settings (so that a child can be pointed elsewhere)."""
    return {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_HOME", "HF_TOKEN")}


def hub_env(hub, tmp_path):
    return {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_TOKEN": "hf_fake",
        "HF_HUB_DISABLE_XET": "1",
    }


@pytest.fixture
def trained_folder(tmp_path):
    write_idx(tmp_path / "data")
    return tmp_path


def test_train_push_then_from_pretrained_in_a_fresh_process(trained_folder, tmp_path):
    out = tmp_path / "run"
    with FakeHub() as hub:
        env = hub_env(hub, tmp_path)
        result = run_script(
            "train.py", *tiny_train_args(trained_folder / "data", out, "--push-to-hub", "alice/tiny-vae"), env=env
        )
        assert result.returncode == 0, result.stderr
        files = hub.repos["alice/tiny-vae"]
        assert {"config.json", "model.safetensors", "README.md", "metrics.json", "samples.png"} <= set(files)
        assert not any(name.startswith("checkpoints/") for name in files)  # training state stays local
        assert files["model.safetensors"] == (out / "model.safetensors").read_bytes()

        card = files["README.md"].decode()
        meta = yaml.safe_load(card.split("---")[1])
        assert meta["library_name"] == "vae-hub" and meta["datasets"] == ["ylecun/mnist"]
        metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
        test = json.loads((out / "metrics.json").read_text())["test"]
        assert metrics["elbo"] == round(test["elbo"], 2) and metrics["nll"] == round(test["nll"], 2)
        assert metrics["active_units"] == test["active_units"]
        assert 'vae_hub.from_pretrained("alice/tiny-vae")' in card

        pulled = subprocess.run(
            [sys.executable, "-c", PULL, "alice/tiny-vae"], capture_output=True, text=True, env=env | _base(), cwd=ROOT
        )
        assert pulled.returncode == 0, pulled.stderr
    name, values = pulled.stdout.split(" ", 1)
    local = vae_hub.from_pretrained(out)
    z = torch.linspace(-2, 2, 3 * local.latent_dim).reshape(3, local.latent_dim)
    assert name == "VariationalAutoencoder"
    assert eval(values) == local.decode(z).flatten().tolist()  # the same floats, to the last bit


def test_a_hub_answering_500_fails_cleanly_and_the_push_can_be_retried(trained_folder, tmp_path):
    out = tmp_path / "run"
    with FakeHub() as hub:
        hub.fail_with = 500
        env = hub_env(hub, tmp_path)
        result = run_script(
            "train.py", *tiny_train_args(trained_folder / "data", out, "--push-to-hub", "bob/vae"), env=env
        )
        assert result.returncode == 3
        assert "the push failed" in result.stderr and "HTTP 500" in result.stderr
        assert "retry with: vae-hub publish" in result.stderr and "Traceback" not in result.stderr
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        assert {"config.json", "model.safetensors", "README.md", "metrics.json"} <= set(before)
        vae_hub.from_pretrained(out)  # intact and loadable

        result = run_script("publish.py", out, "bob/vae", env=env)
        assert result.returncode == 1 and "HTTP 500" in result.stderr and "is unchanged" in result.stderr
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before

        hub.fail_with = None
        result = run_script("publish.py", out, "bob/vae", "--private", "--message", "retry", env=env)
        assert result.returncode == 0, result.stderr
        assert hub.repos["bob/vae"]["model.safetensors"] == before["model.safetensors"] and hub.private["bob/vae"]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_reported(trained_folder, tmp_path, status):
    out = tmp_path / "run"
    assert run_script("train.py", *tiny_train_args(trained_folder / "data", out)).returncode == 0
    with FakeHub() as hub:
        hub.fail_with = status
        result = run_script("publish.py", out, "carol/vae", env=hub_env(hub, tmp_path))
    assert result.returncode == 1 and f"HTTP {status}" in result.stderr


def test_publishing_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{}")
    (tmp_path / "junk" / "model.safetensors").write_bytes(b"nope")
    result = run_script("publish.py", tmp_path / "junk", "dave/vae")
    assert result.returncode == 1 and "does not hold a loadable vae-hub model" in result.stderr
    result = run_script("publish.py", tmp_path / "missing", "dave/vae")
    assert result.returncode == 1 and "has no config.json" in result.stderr


def test_a_folder_linking_outside_itself_is_not_published(tmp_path):
    """publish uploads the whole folder: a README.md linked to /etc/passwd must not reach the Hub."""
    vae_hub.VariationalAutoencoder(784, 16, 2).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "README.md").unlink()
    (tmp_path / "m" / "README.md").symlink_to("/etc/passwd")
    with FakeHub() as hub:
        result = run_script("publish.py", tmp_path / "m", "mallory/vae", env=hub_env(hub, tmp_path))
        assert hub.repos == {}
    assert result.returncode == 1
    assert "README.md in model folder" in result.stderr and "is a link to a file outside the folder" in result.stderr


def test_no_network_is_reported(trained_folder, tmp_path):
    out = tmp_path / "run"
    assert run_script("train.py", *tiny_train_args(trained_folder / "data", out)).returncode == 0
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "h"), "HF_TOKEN": "x"}
    result = run_script("publish.py", out, "erin/vae", env=env, timeout=120)
    assert result.returncode == 1 and "could not push to erin/vae" in result.stderr


LOAD_ERRORS = """
import sys, vae_hub
for name in sys.argv[1:]:
    try:
        vae_hub.from_pretrained(name)
    except vae_hub.CheckpointError as e:
        print(type(e).__name__, "|", e)
"""


def test_hub_load_errors_name_the_problem(tmp_path):
    with FakeHub() as hub:
        hub.repos["frank/readme-only"] = {"README.md": b"# not a model"}
        hub.shas["frank/readme-only"] = "1" * 40
        names = ["frank/missing", "frank/readme-only", "runs/mistyped"]
        env = hub_env(hub, tmp_path) | {"HF_HUB_DISABLE_TELEMETRY": "1"}
        result = subprocess.run(
            [sys.executable, "-c", LOAD_ERRORS, *names], capture_output=True, text=True, env=env | _base(), cwd=ROOT
        )
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout + result.stderr
    assert lines[0].startswith("CheckpointNotFoundError | Hub repo 'frank/missing'") and "was not found" in lines[0]
    assert lines[1] == (
        "CheckpointNotFoundError | Hub repo 'frank/readme-only' has no config.json: "
        "is it a vae-hub model (saved with save_pretrained)?"
    )
    assert "'runs/mistyped' (there is no local folder of that name either) was not found" in lines[2]
