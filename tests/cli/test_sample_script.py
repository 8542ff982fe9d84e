"""vae-hub sample (through scripts/sample.py): an image grid from a saved model."""

from helpers import run_script
from PIL import Image

from vae_hub import ConvVAE


def test_sample_grid_from_a_saved_model(tmp_path):
    ConvVAE(latent_dim=2, base_channels=2, hidden_dim=8).save_pretrained(tmp_path / "m")
    out = tmp_path / "grid.png"
    result = run_script("sample.py", tmp_path / "m", "--n", "16", "--temperature", "0.5", "--out", out)
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (4 * 28 + 5, 4 * 28 + 5)  # 4 x 4 grid, 1-pixel padding


def test_sample_script_errors(tmp_path):
    result = run_script("sample.py", tmp_path / "missing")
    assert result.returncode == 2 and "does not exist" in result.stderr
    ConvVAE(latent_dim=2, base_channels=2, hidden_dim=8).save_pretrained(tmp_path / "m")
    result = run_script("sample.py", tmp_path / "m", "--n", "0")
    assert result.returncode == 2 and "n must be a positive integer" in result.stderr
