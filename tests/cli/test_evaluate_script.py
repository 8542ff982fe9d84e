"""vae-hub evaluate (through scripts/evaluate.py): metrics table and JSON for a local folder; clear errors."""

import json

import pytest
from helpers import run_script, tiny_train_args


def test_evaluate_a_trained_folder(tmp_path, mnist_dir):
    out = tmp_path / "run"
    assert run_script("train.py", *tiny_train_args(tmp_path / "data", out)).returncode == 0
    report = tmp_path / "eval.json"
    args = [out, "--dataset", "mnist", "--data-dir", tmp_path / "data", "--k", "50", "--output", report]
    result = run_script("evaluate.py", *args, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "NLL, importance-sampled (k=50)" in result.stdout and "active units (of 4)" in result.stdout
    metrics = json.loads(report.read_text())
    assert metrics["num_images"] == 64 and metrics["nll_k"] == 50 and len(metrics["kl_per_dim"]) == 4
    assert abs(metrics["loss"] - (metrics["recon"] + metrics["kl"])) < 1e-6 * abs(metrics["loss"]) + 1e-6
    assert metrics["nll"] < metrics["loss"] + 5


def test_evaluate_reports_bad_models_clearly(tmp_path):
    result = run_script("evaluate.py", tmp_path / "nope", "--dataset", "mnist", "--data-dir", tmp_path)
    assert result.returncode == 2 and "error: local folder" in result.stderr and "Traceback" not in result.stderr


def test_a_vq_vae_is_evaluated_by_its_likelihood_bound_and_sampled(tmp_path, mnist_dir):
    from vae_hub import VQVAE

    VQVAE(num_codes=8, code_dim=2, base_channels=4, res_blocks=0, prior_width=8, prior_layers=1, prior_heads=1
          ).save_pretrained(tmp_path / "vq")  # fmt: skip
    output = tmp_path / "eval.json"
    result = run_script("evaluate.py", tmp_path / "vq", "--dataset", "mnist", "--data-dir", mnist_dir,
                        "--no-download", "--no-progress", "--output", output)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "NLL bound: reconstruction + code length" in result.stdout and "codebook perplexity" in result.stdout
    metrics = json.loads(output.read_text())
    assert metrics["nll_bound"] == pytest.approx(metrics["recon"] + metrics["code_length"])
    assert metrics["num_images"] == 64 and 1 <= metrics["codes_used"] <= 8 and "nll" not in metrics
    result = run_script("sample.py", tmp_path / "vq", "--n", "4", "--out", tmp_path / "s.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")
