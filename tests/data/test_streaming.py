"""--streaming: a dataset read as a stream, shared between processes, with held-out test images and exact resume."""

import json

import numpy as np
import pytest
import torch
from image_folders import png_bytes, write_folder, write_parquet
from PIL import Image
from safetensors.torch import load_file

from vae_hub.cli import main
from vae_hub.data.sources import load_splits
from vae_hub.data.spec import DataSpec
from vae_hub.data.streaming import ImageStream
from vae_hub.training.trainer import Trainer

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def no_sleep_when_a_parquet_stream_closes(monkeypatch):
    """datasets sleeps 5 s each time a parquet stream's reader closes (against an Arrow crash at exit): these
    tests' short streams would spend most of their time asleep."""
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)


def write_noise_parquet(path, n):
    """``n`` pictures of 16x16 RGB noise (no two alike) in column ``image``, and ``kind`` (0 or 1)."""
    rng = np.random.default_rng(0)
    pictures = [{"bytes": png_bytes(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))}
                for _ in range(n)]  # fmt: skip
    features = datasets.Features({"image": datasets.Image(), "kind": datasets.Value("int64")})
    table = datasets.Dataset.from_dict({"image": pictures, "kind": [i % 2 for i in range(n)]}, features=features)
    table.to_parquet(str(path))
    return path


def streamed(tmp_path, n=120, **settings):
    path = write_noise_parquet(tmp_path / "pictures.parquet", n=n)
    spec = DataSpec(
        dataset=str(path), cache_dir=str(tmp_path / "cache"), streaming=True, label_column="kind", **settings
    )
    return load_splits(spec, progress=False)


def keys(images):
    return [bytes(image.numpy()) for image in images]


def test_two_processes_share_the_training_pictures_and_never_see_a_test_one(tmp_path):
    splits = streamed(tmp_path, shuffle_buffer=16)
    stream, test = splits.train, splits.test
    assert isinstance(stream, ImageStream) and stream.image_shape == (3, 16, 16)
    assert splits.class_names == ["0", "1"] and not list((tmp_path / "cache").glob("decoded/*"))  # nothing on disk
    share = len(stream) // 2
    seen = [keys(torch.cat([x for x, _ in stream.batches(0, rank, 2, 8, share)])) for rank in (0, 1)]
    assert [len(s) for s in seen] == [share, share]
    assert not set(seen[0]) & set(seen[1])  # each picture in one process's share
    assert not (set(seen[0]) | set(seen[1])) & set(keys(test.images))  # and never a test picture
    assert len(test) + len(stream) == 120 and 4 <= len(test) <= 24  # a 10% share by content hash, counted


def test_each_epoch_is_shuffled_again_and_the_same_epoch_gives_the_same_batches(tmp_path):
    stream = streamed(tmp_path, shuffle_buffer=32).train
    epoch = [keys(torch.cat([x for x, _ in stream.batches(e, 0, 1, 10, 60)])) for e in (0, 0, 1)]
    assert epoch[0] == epoch[1] and epoch[0] != epoch[2]
    labels = torch.cat([y for _, y in stream.batches(0, 0, 1, 10, 60)])
    assert set(labels.tolist()) == {0, 1}


def test_a_share_that_runs_out_starts_again_so_every_process_takes_the_same_steps(tmp_path):
    stream = streamed(tmp_path, max_train_images=1000).train
    images = torch.cat([x for x, _ in stream.batches(0, 0, 1, 64, 300)])
    assert images.shape == (300, 3, 16, 16)


def train(tmp_path, *extra, out="run"):
    args = [
        "train", "--dataset", str(tmp_path / "pictures.parquet"), "--streaming", "--label-column", "kind",
        "--output-dir", str(tmp_path / out),
        "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--hidden-dim", "16", "--latent-dim", "2",
        "--batch-size", "8", "--epochs", "2", "--eval-k", "0", *extra,
    ]  # fmt: skip
    return main(args)


def test_a_streamed_run_stopped_after_an_epoch_resumes_to_the_same_weights(tmp_path, monkeypatch):
    write_parquet(tmp_path / "pictures.parquet", n=120)
    assert train(tmp_path, out="reference") == 0
    card = (tmp_path / "reference" / "README.md").read_text()
    assert "content hash" in card

    real_end = Trainer.end_epoch

    def killed_after_the_first(self, epoch, *args, **kwargs):
        real_end(self, epoch, *args, **kwargs)  # the epoch's checkpoint is written
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "end_epoch", killed_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, out="killed")
    monkeypatch.undo()
    assert train(tmp_path, "--resume", out="killed") == 0
    final, expected = (
        load_file(tmp_path / "killed" / "model.safetensors"),
        load_file(tmp_path / "reference" / "model.safetensors"),
    )
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    history = [json.loads((tmp_path / f / "metrics.json").read_text())["history"] for f in ("killed", "reference")]
    assert [h["train_loss"] for h in history[0]] == [h["train_loss"] for h in history[1]]


@pytest.mark.parametrize(
    ("setup", "extra", "expected"),
    [
        ("folder", [], "--streaming is for Hugging Face datasets"),
        ("parquet", ["--split", "validation"], "--split 'validation' is not a split of"),
        ("parquet", ["--shuffle-buffer", "0"], "--shuffle-buffer must be >= 1, got 0"),
    ],
)
def test_streaming_errors_say_what_to_do(tmp_path, capsys, setup, extra, expected):
    if setup == "folder":
        write_folder(tmp_path / "pictures.parquet", per_class=3)  # a folder, whatever its name
    else:
        write_parquet(tmp_path / "pictures.parquet", n=20)
    assert train(tmp_path, *extra) == 2
    assert expected in capsys.readouterr().err
