"""vae-hub train on your own images: image folders and Hugging Face datasets on disk, and each bad-data message."""

import json

import pytest
import torch
from image_folders import add_bad_files, write_folder, write_parquet, write_save_to_disk
from PIL import Image

import vae_hub
from vae_hub.cli import main

pytest.importorskip("datasets")


def train(tmp_path, dataset, *extra, out="run"):
    """Train a tiny model for one epoch; returns (exit code, output folder)."""
    out_dir = tmp_path / out
    args = [
        "train", "--dataset", str(dataset), "--output-dir", str(out_dir), "--cache-dir", str(tmp_path / "cache"),
        "--no-progress", "--hidden-dim", "16", "--latent-dim", "2", "--batch-size", "8", "--epochs", "1",
        "--eval-k", "4", *extra,
    ]  # fmt: skip
    return main(args), out_dir


def metrics_of(out_dir):
    return json.loads((out_dir / "metrics.json").read_text())


def test_a_grey_folder_with_class_subfolders_trains_and_skips_the_bad_files(tmp_path, capsys):
    root = write_folder(tmp_path / "shapes", grey=True)
    add_bad_files(root, "circle")
    code, out = train(tmp_path, root)
    assert code == 0
    printed = capsys.readouterr().out
    assert "skipped 2 file(s)" in printed and "broken.png" in printed and "notes.txt" in printed
    data = metrics_of(out)["data"]
    assert data["class_names"] == ["circle", "square"]
    assert data["train_images"] + data["test_images"] == 20 and data["test_images"] == 2  # 10% held out
    assert data["image_shape"] == [1, 28, 28]
    card = (out / "README.md").read_text()
    assert "shapes (20 images)" in card and "1x28x28, 2 classes" in card and "held out" in card
    assert "broken.png" in card  # what was left out is on the card
    assert "name: shapes (20 images)" in card and "type: shapes" in card  # the model-index dataset entry
    assert "datasets:" not in card.split("---")[1]  # no Hub dataset to link to
    model = vae_hub.from_pretrained(out)
    assert model.image_shape == (1, 28, 28) and model.sample(2).shape == (2, 1, 28, 28)


def test_an_rgb_folder_of_mixed_sizes_and_formats_is_resized_for_a_convvae(tmp_path):
    root = write_folder(
        tmp_path / "photos", labelled=False, sizes=((40, 30), (32, 32), (20, 24)), formats=("png", "jpg", "webp", "bmp")
    )
    code, out = train(tmp_path, root, "--model", "conv", "--image-size", "16")
    assert code == 0
    data = metrics_of(out)["data"]
    assert data["image_shape"] == [3, 16, 16] and data["class_names"] is None
    model = vae_hub.from_pretrained(out)
    assert type(model).__name__ == "ConvVAE" and model.image_shape == (3, 16, 16)
    assert model.reconstruct(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_channels_can_be_forced_and_a_second_run_reads_the_cache(tmp_path, capsys):
    root = write_folder(tmp_path / "shapes", per_class=6)
    assert train(tmp_path, root, "--channels", "1")[0] == 0
    assert "decoded images from the cache" not in capsys.readouterr().out
    code, out = train(tmp_path, root, "--channels", "1", out="again")
    assert code == 0 and "decoded images from the cache" in capsys.readouterr().out
    assert metrics_of(out)["data"]["image_shape"] == [1, 28, 28]
    (root / "circle" / "circle_000.png").unlink()  # the folder changed: decoded afresh
    train(tmp_path, root, "--channels", "1", out="third")
    assert "decoded images from the cache" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "extra", "expected"),
    [
        ("mixed sizes", [], "not all square and of one size (2 size(s): 28x28"),
        ("mixed sizes", [], "pass --image-size S"),
        ("bad files", ["--strict-data"], "--strict-data: skipped 1 file(s)"),
        ("empty", [], "no images in"),
        ("only broken", [], "none of the 1 file(s)"),
        ("tiny disk", [], "decoding 20 images of 3x28x28 needs 45.9 KB on disk for the decoded cache in"),
        ("tiny disk", [], "free: free some space, pass --cache-dir on a larger disk"),
        ("one image", [], "cannot be split into training and test images"),
    ],
)
def test_bad_folders_give_a_clear_message(tmp_path, capsys, monkeypatch, setup, extra, expected):
    root = tmp_path / "data"
    root.mkdir()
    if setup == "mixed sizes":
        write_folder(root, sizes=((28, 28), (32, 20)))
    elif setup == "bad files":
        write_folder(root, per_class=3)
        (root / "circle" / "notes.txt").write_text("hello")
    elif setup == "only broken":
        (root / "a.png").write_bytes(b"garbage")
    elif setup == "tiny disk":
        write_folder(root, per_class=10)  # 20 colour 28x28 pictures: 47,040 bytes decoded
        monkeypatch.setattr("vae_hub.data.cache.disk_free", lambda folder: 2**20)
    elif setup == "one image":
        write_folder(root, per_class=1, classes=("circle",))
    code, out = train(tmp_path, root, *extra)
    assert code == 2
    assert expected in capsys.readouterr().err
    assert not out.exists() or not (out / "model.safetensors").exists()


def test_a_save_to_disk_dataset_uses_its_test_split_and_class_names(tmp_path):
    path = write_save_to_disk(tmp_path / "shapes_ds")
    code, out = train(tmp_path, path, "--model", "conv")
    assert code == 0
    data = metrics_of(out)["data"]
    assert data["class_names"] == ["circle", "square"]
    assert (data["train_images"], data["test_images"]) == (24, 8) and "'test' split" in data["test_split"]
    model = vae_hub.from_pretrained(out)
    assert model.image_shape == (3, 16, 16)


def test_a_parquet_file_with_other_column_names(tmp_path):
    path = write_parquet(tmp_path / "shapes.parquet")
    code, out = train(tmp_path, path, "--label-column", "kind", "--test-fraction", "0.2")
    assert code == 0
    data = metrics_of(out)["data"]
    assert data["class_names"] == ["0", "1"] and data["test_images"] == 6  # the image column was detected
    assert vae_hub.from_pretrained(out).image_shape == (3, 16, 16)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--image-column", "photo"], "--image-column 'photo' is not a column of the dataset; its columns are"),
        (["--split", "validation"], "--split 'validation' is not a split of"),
        (["--test-split", "dev"], "--test-split 'dev' is not a split of"),
    ],
)
def test_bad_dataset_options_name_what_exists(tmp_path, capsys, extra, expected):
    path = write_save_to_disk(tmp_path / "shapes_ds", n_train=4, n_test=2)
    code, _ = train(tmp_path, path, *extra)
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and ("['image', 'label']" in err or "['train', 'test']" in err)


def test_a_hub_dataset_id_offline_says_what_to_use_instead(tmp_path, capsys):
    code, _ = train(tmp_path, "someone/pictures", "--no-download")
    assert code == 2
    err = capsys.readouterr().err
    assert "'someone/pictures'" in err and "--no-download" in err


def test_named_data_sets_refuse_image_size(tmp_path, capsys):
    code, _ = train(tmp_path, "mnist", "--image-size", "32", "--no-download")
    assert code == 2 and "--image-size and --channels are for your own images" in capsys.readouterr().err


def test_a_conditional_model_from_a_labelled_folder_samples_the_class_asked_for(tmp_path):
    root = write_folder(tmp_path / "shapes", per_class=8, classes=("circle", "square", "triangle"))
    code, out = train(tmp_path, root, "--conditional", "--model", "conv", "--image-size", "16")
    assert code == 0
    model = vae_hub.from_pretrained(out)
    assert model.conditional and model.class_names == ["circle", "square", "triangle"]
    assert model.sample(4, labels="square").shape == (4, 3, 16, 16)
    card = (out / "README.md").read_text()
    assert "conditional" in card and "0 `circle`, 1 `square`, 2 `triangle`." in card
    assert "one row per class (circle, square, triangle" in card
    samples = Image.open(out / "samples.png")
    assert samples.height > samples.width / 8 * 3 * 0.9  # three rows of eight


def test_conditional_training_without_labels_says_how_to_give_them(tmp_path, capsys):
    root = write_folder(tmp_path / "loose", labelled=False)
    code, _ = train(tmp_path, root, "--conditional")
    assert code == 2
    assert "--conditional needs a class label for every image, but loose has no labels" in capsys.readouterr().err


def test_the_convvae_depth_follows_the_image_size():
    from vae_hub.training.config import TrainConfig
    from vae_hub.training.trainer import build_model

    config = TrainConfig(model="conv")
    depths = {side: build_model(config, (3, side, side)).feature_shape[1:] for side in (28, 32, 64, 128)}
    assert depths == {28: (7, 7), 32: (4, 4), 64: (4, 4), 128: (4, 4)}
    config.num_downsamples = 3
    assert build_model(config, (3, 64, 64)).feature_shape == (128, 8, 8)


def test_evaluate_rebuilds_the_held_out_test_images_or_takes_any_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = write_folder(tmp_path / "shapes", per_class=10, classes=("circle", "square"))
    code, out = train(tmp_path, root, "--conditional", "--model", "conv", "--image-size", "16")
    assert code == 0
    trained = metrics_of(out)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "4", "--no-progress"]) == 0  # no --dataset: the data it trained on
    printed = capsys.readouterr().out
    assert "test images: 2 from" in printed and "a random 10% of the folder shapes" in printed
    evaluated = json.loads((tmp_path / "eval_shapes.json").read_text())
    assert evaluated["num_images"] == trained["data"]["test_images"] == 2  # the same held-out images
    assert evaluated["nll_k"] == 4 and evaluated["loss"] > 0
    other = write_folder(tmp_path / "other", per_class=5, classes=("circle", "square"))
    assert main(["evaluate", str(out), "--dataset", str(other), "--test-fraction", "0.5", "--k", "0",
                 "--no-progress", "--output", str(tmp_path / "o.json")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "o.json").read_text())["num_images"] == 5
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_rebuilds_the_test_split_from_the_stored_data_spec(tmp_path, capsys, monkeypatch):
    """metrics.json's data_spec alone decides the test images: the flat config beside it is not read."""
    monkeypatch.chdir(tmp_path)
    root = write_folder(tmp_path / "shapes", per_class=10, classes=("circle", "square"))
    code, out = train(tmp_path, root, "--model", "conv", "--image-size", "16", "--test-fraction", "0.3", "--seed", "7")
    assert code == 0
    metrics = metrics_of(out)
    spec = metrics["data_spec"]
    assert (spec["dataset"], spec["test_fraction"], spec["seed"]) == (str(root), 0.3, 7)
    assert metrics["data"]["test_images"] == 6
    metrics["config"] = {"dataset": "mnist", "test_fraction": 0.9, "seed": 1}  # what evaluate must not follow
    (out / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert main(["evaluate", str(out), "--k", "0", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "test images: 6 from" in printed and "a random 30% of the folder shapes" in printed and "seed 7" in printed
    del metrics["data_spec"]  # a folder written before 0.2.0: its flat config holds the data settings
    metrics["config"] = {"dataset": str(root), "test_fraction": 0.3, "seed": 7}
    (out / "metrics.json").write_text(json.dumps(metrics))
    assert main(["evaluate", str(out), "--k", "0", "--no-progress"]) == 0
    assert "test images: 6 from" in capsys.readouterr().out
    metrics["data_spec"] = {"dataset": str(root), "seed": "seven"}
    (out / "metrics.json").write_text(json.dumps(metrics))
    assert main(["evaluate", str(out), "--k", "0", "--no-progress"]) == 2
    assert "the stored data setting seed is 'seven', not an integer" in capsys.readouterr().err


def test_sample_with_a_mixture_fitted_to_the_training_images_codes(tmp_path, capsys):
    from PIL import Image

    root = write_folder(tmp_path / "shapes", per_class=6)
    code, out = train(tmp_path, root, "--autoencoder")  # a plain autoencoder: no prior to sample from
    assert code == 0
    capsys.readouterr()
    grid = tmp_path / "gmm.png"
    args = ["sample", str(out), "--sampler", "gmm", "--components", "2", "--n", "4", "--out", str(grid)]
    assert main([*args, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "fitting 2 Gaussians to the codes of" in printed and f"images from {root}" in printed
    assert Image.open(grid).size == (2 * 28 + 3, 2 * 28 + 3)
    assert main(["sample", str(out), "--sampler", "gmm", "--components", "500", "--out", str(grid)]) == 2
    assert "components must be an integer in [1," in capsys.readouterr().err
