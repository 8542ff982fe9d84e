"""Loading data sets from torchvision's layout or from a folder of IDX .gz files."""

import pytest
import torch
from idx_data import make_images, write_idx

from vae_hub.data.image_data import to_unit
from vae_hub.data.named_sets import DATASETS, load_dataset
from vae_hub.errors import DataNotFoundError, IDXFormatError


def test_torchvision_layout_is_read_in_place(tmp_path):
    write_idx(tmp_path / "data" / "MNIST" / "raw", n_train=50, n_test=20)
    train = load_dataset("mnist", tmp_path / "data", train=True, download=False, cache_dir=tmp_path / "cache")
    test = load_dataset("mnist", tmp_path / "data", train=False, download=False, cache_dir=tmp_path / "cache")
    assert train.images.shape == (50, 1, 28, 28) and test.images.shape == (20, 1, 28, 28)
    assert train.images.dtype == torch.uint8  # held as bytes, scaled per batch
    expected, labels = make_images(50, 0)
    torch.testing.assert_close(to_unit(train.images)[:, 0], expected.float() / 255)
    assert train.class_names is not None and len(train.class_names) == 10
    assert torch.equal(train.labels, labels.long())
    assert not (tmp_path / "cache").exists()  # nothing unpacked


def test_a_folder_of_gz_files_is_unpacked_once_into_the_cache(tmp_path):
    write_idx(tmp_path / "debian", n_train=30, n_test=10, gz=True)
    data = load_dataset("fashion-mnist", tmp_path / "debian", train=True, download=False, cache_dir=tmp_path / "c")
    assert data.images.shape == (30, 1, 28, 28)
    assert (tmp_path / "c" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_missing_data_says_which_files_were_expected_where(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion-mnist", tmp_path / "empty", train=True, download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and f"{tmp_path}/empty/FashionMNIST/raw/" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown data set 'svhn'; choose one of mnist, fashion-mnist"):
        load_dataset("svhn", "data", train=True)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-5], "header announces 30 x 28 x 28 bytes of data, but the file holds 23,515"),
        (lambda b: b"\x00\x00\x0d\x03" + b[4:], "not an IDX file of 3-D unsigned bytes: it starts with 00000d03"),
        (lambda b: b[:6], "not an IDX file of 3-D unsigned bytes"),
    ],
)
def test_a_damaged_idx_file_is_refused_before_its_data_is_read(tmp_path, damage, message):
    raw = write_idx(tmp_path / "data" / "MNIST" / "raw", n_train=30, n_test=10)
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(damage(images.read_bytes()))
    with pytest.raises(IDXFormatError, match=message):
        load_dataset("mnist", tmp_path / "data", train=True, download=False)


def test_the_mnist_family_reads_without_torchvision_and_names_its_classes_as_torchvision_does(tmp_path):
    import subprocess
    import sys

    write_idx(tmp_path / "data" / "FashionMNIST" / "raw", n_train=30, n_test=10)
    code = (
        "import sys; from vae_hub.data import load_dataset; "
        f"d = load_dataset('fashion-mnist', {str(tmp_path / 'data')!r}, train=True, download=False); "
        "assert 'torchvision' not in sys.modules; print(d.class_names)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    import torchvision

    assert result.stdout.strip() == str(torchvision.datasets.FashionMNIST.classes)
    for name in ("mnist", "kmnist"):
        assert DATASETS[name].classes == getattr(torchvision.datasets, DATASETS[name].torchvision_class).classes
