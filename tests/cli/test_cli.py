"""The vae-hub command: each subcommand's --help, the training flags from TrainConfig, what training imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from dataclasses import fields

import pytest

from vae_hub.cli import COMMANDS, main
from vae_hub.training.config import TrainConfig, flag_name


@pytest.mark.parametrize("command", [*COMMANDS, "space deploy"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*command.split(), "--help"])
    assert stop.value.code == 0
    assert f"usage: vae-hub {command.replace('-', ' ')}" in capsys.readouterr().out


def test_train_flags_come_from_the_config_fields(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in fields(TrainConfig):
        assert flag_name(f) in text, flag_name(f)
    assert "--model {mlp,conv,hvae,vqvae}" in text and "(default: mlp)" in text and "(default: 0.001)" in text
    assert "--mixed-precision {auto,no,fp16,bf16}" in text


def test_the_console_command_flushes_what_it_printed_and_keeps_the_exit_code():
    # entry() ends the process with os._exit (no 0.7-s interpreter shutdown): buffered output must not be lost
    code = (
        "import sys; from vae_hub import cli; "
        "cli.main = lambda argv=None: (sys.stdout.write('printed'), sys.stderr.write('warned'), 3)[-1]; cli.entry()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (3, "printed", "warned")


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2 and "required: COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-train-images", "-5"], "--max-train-images must be >= 1"),
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--eval-k", "-1"], "--eval-k must be >= 0"),
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--beta", "-1"], "--beta must be a finite number >= 0"),
        (["--gaussian-std", "0"], "--gaussian-std must be a number in (0, 1e+06], got 0.0"),
        # a model setting's range is the model class's config rule: from_pretrained would refuse such a folder
        (["--model", "conv", "--res-blocks", "17"], "--res-blocks must be an integer in [0, 16], got 17"),
        (["--latent-dim", "70000"], "--latent-dim must be an integer in [1, 65536], got 70000"),
        (["--model", "conv", "--num-downsamples", "0"], "--num-downsamples must be an integer in [1, 13], got 0"),
        (["--iw-samples", "0"], "--iw-samples must be >= 1, got 0"),
        (["--model", "hvae", "--conditional"], "--model hvae is neither conditional nor a plain autoencoder"),
        (["--model", "mlp", "--latent-channels", "4"], "--latent-channels is for --model hvae only, got 4"),
        (["--model", "hvae", "--latent-channels", "0"], "--latent-channels must be an integer in [1, 1024], got 0"),
        (["--model", "mlp", "--res-blocks", "1"], "--res-blocks is for --model conv, hvae or vqvae only, got 1"),
        (["--model", "conv", "--pixel-context", "3"], "--pixel-context is for --model hvae only, got 3"),
        (["--model", "hvae", "--pixel-context", "9"], "--pixel-context must be an integer in [0, 8], got 9"),
        (
            ["--model", "vqvae", "--ema", "0.999", "--latent-dim", "8"],
            "--model vqvae has no Gaussian latent, KL term or VAE prior: leave out --latent-dim, --ema",
        ),
        (["--model", "conv", "--num-codes", "64"], "--num-codes: for --model vqvae only"),
        (["--model", "vqvae", "--num-codes", "1"], "--num-codes must be an integer in [2, 65536], got 1"),
        (["--model", "vqvae", "--prior-epochs", "0"], "--prior-epochs must be >= 1, got 0"),
        (["--iw-samples", "5", "--beta", "4"], "--iw-samples 5 trains the IWAE bound, which has no KL term"),
        (["--output-dir", "{file}"], "is a file; expected a folder"),
        (["--output-dir", "{file}/run"], "cannot be created: "),
    ],
)
def test_training_flags_are_checked_before_any_data_is_read(tmp_path, capsys, flags, message):
    (tmp_path / "a-file").write_text("x")
    flags = [f.replace("{file}", str(tmp_path / "a-file")) for f in flags]
    start = time.perf_counter()
    code = main(["train", "--data-dir", str(tmp_path / "no-data"), "--no-download", "--output-dir", str(tmp_path / "o"),
                 *flags])  # fmt: skip
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "was not found" not in err and seconds < 1  # refused before looking for the (missing) data
    assert not (tmp_path / "o").exists()


def test_a_training_command_imports_nothing_it_does_not_use(tmp_path, mnist_dir):
    """Start-up is part of every run: torch.optim would import torch._dynamo (1.3 s, 150 MB),
    torch.broadcast_shapes sympy (0.3-0.5 s), and the parser with every subcommand the benchmark's modules (0.1 s).
    A whole ``vae-hub train`` (its test passes and NLL included) needs none of them."""

    code = textwrap.dedent(f"""
        import sys
        from vae_hub.cli import main
        assert main(["train", "--dataset", "mnist", "--data-dir", {str(tmp_path / "data")!r}, "--output-dir",
                     {str(tmp_path / "run")!r}, "--epochs", "1", "--batch-size", "32", "--hidden-dim", "16",
                     "--latent-dim", "2", "--eval-k", "4", "--no-progress", "--cache-dir",
                     {str(tmp_path / "cache")!r}]) == 0
        heavy = [m for m in ("torch._dynamo", "torchvision", "sympy", "vae_hub.cli.benchmark") if m in sys.modules]
        assert not heavy, heavy
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
