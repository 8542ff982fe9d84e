"""vae-hub train (through scripts/train.py): data layouts, the output folder, resume after SIGKILL, two processes."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import ROOT, free_port, run_script, tiny_train_args
from idx_data import write_idx
from image_folders import write_parquet
from safetensors.torch import load_file

import vae_hub

OUTPUT_FILES = {
    "config.json",
    "model.safetensors",
    "README.md",
    "metrics.json",
    "samples.png",
    "reconstructions.png",
    "training_curves.png",
}


def check_output_folder(out, epochs):
    assert {p.name for p in out.iterdir()} >= OUTPUT_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == list(range(1, epochs + 1))
    test = metrics["test"]
    assert test["nll_k"] == 8 and test["nll"] <= test["loss"] + 5  # the IWAE bound is (nearly always) tighter
    card = (out / "README.md").read_text()
    assert "library_name: vae-hub" in card and "model-index" in card
    assert f"{test['loss']:.2f}" in card and f"{test['nll']:.2f}" in card
    model = vae_hub.from_pretrained(out)
    assert model.sample(2).shape == (2, 1, 28, 28)
    return metrics


MODEL_FLAGS = {"mlp": [], "conv": ["--base-channels", "4"], "hvae": ["--base-channels", "4", "--latent-channels", "2"]}
MODEL_TYPE_NAMES = {"mlp": "VariationalAutoencoder", "conv": "ConvVAE", "hvae": "HierarchicalVAE"}


@pytest.mark.parametrize("model", sorted(MODEL_FLAGS))
def test_train_on_torchvision_layout(tmp_path, mnist_dir, model):
    out = tmp_path / "run"
    extra = ["--model", model, "--epochs", "2", *MODEL_FLAGS[model]]
    result = run_script("train.py", *tiny_train_args(tmp_path / "data", out, *extra))
    assert result.returncode == 0, result.stderr
    assert "epoch 2: train loss" in result.stdout
    metrics = check_output_folder(out, epochs=2)
    assert metrics["history"][1]["train_loss"] < metrics["history"][0]["train_loss"]
    assert json.loads((out / "config.json").read_text())["model_type"] == MODEL_TYPE_NAMES[model]


def test_an_autoregressive_hierarchical_vae_trains_loads_and_says_so_on_its_card(tmp_path, mnist_dir):
    out = tmp_path / "run"
    extra = ["--model", "hvae", "--epochs", "1", "--pixel-context", "2", *MODEL_FLAGS["hvae"]]
    result = run_script("train.py", *tiny_train_args(tmp_path / "data", out, *extra))
    assert result.returncode == 0, result.stderr
    check_output_folder(out, epochs=1)
    assert json.loads((out / "config.json").read_text())["pixel_context"] == 2
    card = (out / "README.md").read_text()
    assert "autoregressive decoder: each pixel also reads the pixels decoded before it, up to 2 rows" in card
    model = vae_hub.from_pretrained(out)
    assert model.pixel_context == 2 and model.sample(2).shape == (2, 1, 28, 28)


def test_train_on_a_folder_of_gz_files(tmp_path):
    write_idx(tmp_path / "debian", gz=True)
    out = tmp_path / "run"
    args = tiny_train_args(tmp_path / "debian", out, "--epochs", "1", "--binarize", "--kl-warmup", "0.5")
    args[args.index("mnist")] = "fashion-mnist"
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr
    check_output_folder(out, epochs=1)
    assert "Trained on 256 images, not the full 60,000" in (out / "README.md").read_text()


def test_missing_data_exits_with_a_clear_message(tmp_path):
    result = run_script("train.py", *tiny_train_args(tmp_path / "nothing", tmp_path / "run"))
    assert result.returncode == 2
    assert "mnist was not found: expected the four IDX files" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_flags_exit_with_a_clear_message(tmp_path):
    write_idx(tmp_path / "data")
    result = run_script("train.py", *tiny_train_args(tmp_path / "data", tmp_path / "run", "--lr", "-1"))
    assert result.returncode == 2 and "lr must be a finite number > 0, got -1.0" in result.stderr


@pytest.mark.slow  # trains until it diverges
def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    write_idx(tmp_path / "data")
    out = tmp_path / "run"
    assert run_script("train.py", *tiny_train_args(tmp_path / "data", out, "--epochs", "1")).returncode == 0
    good = load_file(out / "checkpoints" / "epoch-0001" / "model.safetensors")
    # resume with an absurd learning rate: the loss overflows in epoch 2
    args = tiny_train_args(tmp_path / "data", out, "--epochs", "3", "--resume", "--lr", "1e30", "--log-every", "1")
    result = run_script("train.py", *args)
    assert result.returncode == 2, result.stderr
    assert "the loss became" in result.stderr and "the last good checkpoint" in result.stderr
    assert "epoch-0001, is kept" in result.stderr and "Traceback" not in result.stderr
    kept = load_file(out / "checkpoints" / "epoch-0001" / "model.safetensors")
    assert all(torch.equal(good[k], kept[k]) for k in good)
    assert (out / "checkpoints" / "latest").read_text() == "epoch-0001"


def own_images_args(tmp_path, out, *extra):
    """tiny_train_args on the parquet file of 16x16 pictures in tmp_path (decoded into the mapped cache)."""
    args = tiny_train_args(tmp_path / "data", out, *extra)
    args[args.index("mnist")] = str(tmp_path / "pictures.parquet")
    return args


@pytest.mark.parametrize("source", ["in memory", "mapped cache"])
def test_sigkill_mid_epoch_then_resume_gives_the_same_weights(tmp_path, source):
    if source == "in memory":  # a named data set: IDX files read into memory
        write_idx(tmp_path / "data", n_train=12_000, n_test=64)

        def train_args(tmp_path, out, *extra):
            return tiny_train_args(tmp_path / "data", out, *extra)

    else:  # your own pictures: decoded once into the cache file, which every run maps
        pytest.importorskip("datasets")
        write_parquet(tmp_path / "pictures.parquet", n=12_000)
        train_args = own_images_args
    args = ["--epochs", "3", "--batch-size", "8", "--eval-k", "0"]
    reference = tmp_path / "reference"
    result = run_script("train.py", *train_args(tmp_path, reference, *args))
    assert result.returncode == 0, result.stderr

    out = tmp_path / "killed"
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), *train_args(tmp_path, out, *args)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = out / "checkpoints" / "latest"
    deadline = time.time() + 120
    while not (latest.is_file() and latest.read_text() == "epoch-0001") and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # inside epoch 2 (1,500 steps; the fused step does one in well under a millisecond)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert latest.read_text() == "epoch-0001" and not (out / "model.safetensors").exists()

    result = run_script("train.py", *train_args(tmp_path, out, *args, "--resume"))
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout
    final, expected = load_file(out / "model.safetensors"), load_file(reference / "model.safetensors")
    assert final.keys() == expected.keys()
    for key in expected:
        assert torch.equal(final[key], expected[key]), key

    def history(folder):
        return [
            {k: v for k, v in h.items() if k not in ("seconds", "train_epoch_seconds")}
            for h in json.loads((folder / "metrics.json").read_text())["history"]
        ]

    assert history(out) == history(reference)


def test_accelerate_launch_with_two_cpu_processes(tmp_path):
    # `accelerate launch --cpu --num_processes 2` starts ONE process unless mpirun is configured
    # (huggingface/accelerate#2741); the torchrun launcher with the script's own --cpu starts two, on gloo.
    write_idx(tmp_path / "data")
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(ROOT / "scripts" / "train.py"), "--cpu", *tiny_train_args(tmp_path / "data", out, "--epochs", "2"),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check_output_folder(out, epochs=2)
    assert "32 x 2 process(es)" in (out / "README.md").read_text()


def two_processes(tmp_path, out, *extra):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(ROOT / "scripts" / "train.py"), "--cpu", *own_images_args(tmp_path, out, "--epochs", "1", *extra),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_two_processes_map_one_decoded_copy_of_your_images(tmp_path):
    pytest.importorskip("datasets")
    write_parquet(tmp_path / "pictures.parquet", n=200)
    out = tmp_path / "run"
    result = two_processes(tmp_path, out)
    # the main process decodes; the other waits for it, then maps the same file
    assert result.stdout.count("decoded images from the cache") == 1
    (cache,) = [p for p in (tmp_path / "cache" / "decoded").iterdir() if p.is_dir()]
    assert (cache / "images.u8").stat().st_size == 200 * 3 * 16 * 16
    assert json.loads((out / "metrics.json").read_text())["data"]["train_images"] == 180
    assert "32 x 2 process(es)" in (out / "README.md").read_text()


def test_two_processes_stream_a_dataset_each_reading_its_share(tmp_path):
    pytest.importorskip("datasets")
    write_parquet(tmp_path / "pictures.parquet", n=200)
    out = tmp_path / "run"
    two_processes(tmp_path, out, "--streaming", "--label-column", "kind")
    assert not (tmp_path / "cache" / "decoded").exists()  # nothing decoded to disk
    data = json.loads((out / "metrics.json").read_text())["data"]
    assert data["train_images"] + data["test_images"] == 200 and "content hash" in data["test_split"]
    assert "32 x 2 process(es)" in (out / "README.md").read_text()


def test_a_broken_checkpoint_is_a_checkpoint_error(tmp_path):
    from vae_hub import CheckpointError, VariationalAutoencoder
    from vae_hub.training import checkpoint

    model = VariationalAutoencoder(16, 8, 2)
    optimizer = torch.optim.Adam(model.parameters())
    saved = checkpoint.save(tmp_path, 1, model, optimizer, {"history": []})
    assert checkpoint.latest(tmp_path) == saved and checkpoint.load(saved, model, optimizer, rank=0)["epoch"] == 1
    with pytest.raises(CheckpointError, match="no RNG state for process 1"):
        checkpoint.load(saved, model, optimizer, rank=1)
    with pytest.raises(CheckpointError, match="cannot resume from"):  # another model's checkpoint
        checkpoint.load(saved, VariationalAutoencoder(16, 9, 2), optimizer, rank=0)
    (saved / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot resume from"):
        checkpoint.load(saved, model, optimizer, rank=0)


def test_iwae_training_reported_to_tensorboard_leaves_event_files_with_the_figures(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    write_idx(tmp_path / "data")
    out = tmp_path / "run"
    args = tiny_train_args(tmp_path / "data", out, "--epochs", "2", "--iw-samples", "3", "--report-to", "tensorboard")
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr
    history = json.loads((out / "metrics.json").read_text())["history"]
    card = (out / "README.md").read_text()
    assert "| objective | IWAE bound, 3 importance samples |" in card and "importance-weighted bound with 3" in card
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"| — in bits per dimension | {metrics['test']['nll_bits_per_dim']:.4f} |" in card
    assert metrics["test"]["nll_bits_per_dim"] == pytest.approx(metrics["test"]["nll"] / (784 * math.log(2)))
    assert f"(2 epochs, test passes included) on {metrics['hardware']}" in card and "PyTorch" in metrics["hardware"]
    scalars, images = {}, set()
    for events in (out / "logs").rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent), size_guidance={"images": 0, "scalars": 0}).Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
        images |= set(acc.Tags()["images"])
    for name in ("test_loss", "train_loss", "train_kl", "active_units", "lr"):
        logged = scalars[name]
        assert [step for step, _ in logged] == [1, 2]
        assert [v for _, v in logged] == pytest.approx([h[name] for h in history], rel=1e-5)
    assert {"samples", "reconstructions"} <= {tag.split("/")[0] for tag in images}, images


@pytest.mark.slow  # three training runs
def test_ema_weights_are_what_is_saved_and_a_resume_continues_them_exactly(tmp_path):
    write_idx(tmp_path / "data", n_train=256, n_test=32)
    args = ["--batch-size", "32", "--eval-k", "0", "--ema", "0.9"]
    reference = tmp_path / "reference"
    result = run_script("train.py", *tiny_train_args(tmp_path / "data", reference, "--epochs", "2", *args))
    assert result.returncode == 0, result.stderr
    saved = load_file(reference / "model.safetensors")
    checkpoint = reference / "checkpoints" / "epoch-0002"
    raw, ema = load_file(checkpoint / "model.safetensors"), load_file(checkpoint / "ema.safetensors")
    assert all(torch.equal(saved[k], ema[f"module.{k}"]) for k in saved), "the folder holds the averaged weights"
    assert not all(torch.equal(saved[k], raw[k]) for k in saved), "...which differ from the last step's"

    out = tmp_path / "resumed"
    assert run_script("train.py", *tiny_train_args(tmp_path / "data", out, "--epochs", "1", *args)).returncode == 0
    result = run_script("train.py", *tiny_train_args(tmp_path / "data", out, "--epochs", "2", "--resume", *args))
    assert result.returncode == 0, result.stderr
    final = load_file(out / "model.safetensors")
    assert all(torch.equal(final[k], saved[k]) for k in saved)
    refused = run_script("train.py", *tiny_train_args(tmp_path / "data", tmp_path / "x", "--ema", "1.5"))
    assert refused.returncode == 2 and "--ema must be a decay in [0, 1)" in refused.stderr


def test_a_split_larger_than_the_device_copy_limit_stays_in_host_memory(monkeypatch):
    from vae_hub.training import trainer

    images = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    assert trainer.on_device(images, torch.device("cpu")) is images  # no copy on the CPU
    assert trainer.on_device(images, torch.device("meta")).device.type == "meta"  # small: moved whole
    monkeypatch.setattr(trainer, "DEVICE_COPY_MAX", images.nbytes - 1)
    assert trainer.on_device(images, torch.device("meta")) is images  # large: each batch is copied instead
