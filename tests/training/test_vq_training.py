"""vae-hub train --model vqvae: both stages by one command, the model folder, and --resume inside the second stage."""

import json
import os
import signal
import subprocess
import sys
import time

from helpers import ROOT, run_script, tiny_train_args
from idx_data import write_idx
from safetensors.torch import load_file

import vae_hub

VQ_FLAGS = ["--model", "vqvae", "--base-channels", "4", "--num-codes", "16", "--code-dim", "4"]


def vq_args(data_dir, out, *extra):
    """tiny_train_args without the VAE-only --hidden-dim and --latent-dim (refused with --model vqvae)."""
    args = tiny_train_args(data_dir, out, *VQ_FLAGS, *extra)
    for flag in ("--hidden-dim", "--latent-dim"):
        i = args.index(flag)
        del args[i : i + 2]
    return args


def test_vqvae_trains_its_autoencoder_then_its_prior_and_writes_a_loadable_folder(tmp_path, mnist_dir):
    out = tmp_path / "run"
    result = run_script("train.py", *vq_args(mnist_dir, out, "--epochs", "2", "--prior-epochs", "2"))
    assert result.returncode == 0, result.stderr
    assert "autoencoder epoch 2/2: reconstruction" in result.stdout and "prior epoch 2/2: code length" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    assert [(h["epoch"], h["stage"]) for h in history] == [
        (1, "autoencoder"), (2, "autoencoder"), (3, "prior"), (4, "prior")]  # fmt: skip
    assert history[1]["train_loss"] < history[0]["train_loss"]  # the reconstruction improves
    assert history[3]["train_loss"] < history[2]["train_loss"]  # and so does the prior's code length
    test = metrics["test"]
    assert test["nll_bound"] == test["recon"] + test["code_length"] and test["bernoulli_floor"] < test["recon"]
    assert 1 <= test["perplexity"] <= 16 and "elbo" not in test

    model = vae_hub.from_pretrained(out)
    assert type(model).__name__ == "VQVAE" and model.num_codes == 16
    assert model.sample(3).shape == (3, 1, 28, 28)
    card = (out / "README.md").read_text()
    assert "library_name: vae-hub" in card and "VQ-VAE" in card and f"{test['nll_bound']:.2f}" in card
    assert "codebook perplexity" in card and "active units" not in card and "KL(q" not in card
    assert (out / "training_curves.png").read_bytes().startswith(b"\x89PNG")

    # vae-hub evaluate reads the data from metrics.json and gives the same figures as training's last evaluation
    result = run_script("evaluate.py", out, "--no-progress", "--output", tmp_path / "eval.json")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    for key in ("recon", "code_length", "nll_bound", "perplexity", "codes_used"):
        assert abs(evaluated[key] - test[key]) < 1e-3, key


def test_a_vqvae_run_killed_in_its_prior_stage_resumes_to_the_same_weights(tmp_path):
    write_idx(tmp_path / "data", n_train=1200, n_test=64)
    args = ["--epochs", "1", "--prior-epochs", "2", "--batch-size", "8"]
    reference = tmp_path / "reference"
    result = run_script("train.py", *vq_args(tmp_path / "data", reference, *args))
    assert result.returncode == 0, result.stderr

    out = tmp_path / "killed"
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), *vq_args(tmp_path / "data", out, *args)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = out / "checkpoints" / "latest"
    deadline = time.time() + 240
    while not (latest.is_file() and latest.read_text() == "epoch-0002") and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(0.2)  # inside the prior's second epoch (150 steps)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert latest.read_text() == "epoch-0002" and not (out / "model.safetensors").exists()

    result = run_script("train.py", *vq_args(tmp_path / "data", out, *args, "--resume"))
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout and "(epoch 2 of 3 done)" in result.stdout
    final, expected = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert final.keys() == expected.keys()
    for key in expected:
        assert (final[key] == expected[key]).all(), key
