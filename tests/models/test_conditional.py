"""The conditional VAE: q(z|x, y) and p(x|z, y), labels through the whole API, and save/load of its classes."""

import json

import pytest
import torch

import vae_hub
from vae_hub import ConvVAE, VariationalAutoencoder, elbo, importance_sampled_log_likelihood, iwae

CLASSES = ["cat", "dog", "fish"]


@pytest.fixture(params=["mlp", "conv"])
def model(request):
    torch.manual_seed(0)
    if request.param == "mlp":
        return VariationalAutoencoder(64, 32, 3, num_classes=3, class_names=CLASSES)
    return ConvVAE((1, 8, 8), latent_dim=3, base_channels=4, hidden_dim=16, num_classes=3, class_names=CLASSES)


def test_the_label_changes_what_is_decoded_and_names_or_indices_mean_the_same(model):
    z = torch.randn(2, 3)
    assert not torch.allclose(model.decode(z, labels=0), model.decode(z, labels=1))
    torch.testing.assert_close(model.decode(z, labels="dog"), model.decode(z, labels=[1, 1]))
    torch.testing.assert_close(model.decode(z, labels=torch.tensor([2, 0])), model.decode(z, labels=["fish", "cat"]))


def test_every_method_takes_labels(model):
    x = torch.rand(4, 1, 8, 8)
    assert model.sample(5, labels="fish").shape == (5, 1, 8, 8)
    assert model.reconstruct(x, labels=[0, 1, 2, 0]).shape == x.shape
    assert model.interpolate(x[:2], x[2:], steps=3, labels=1).shape == (2, 3, 1, 8, 8)
    assert model.traverse(x[:1], 0, [-1.0, 0.0, 1.0], labels="cat").shape == (1, 3, 1, 8, 8)
    mu, logvar = model.encode(x, labels=2)
    assert mu.shape == logvar.shape == (4, 3)
    assert elbo(model, x, labels=torch.tensor([0, 1, 2, 0])).total.shape == (4,)
    assert iwae(model, x, 3, labels=torch.tensor([0, 1, 2, 0])).iw_bound.shape == (4,)
    assert importance_sampled_log_likelihood(model, x, k=4, labels=1).shape == (4,)


def test_interpolating_classes_at_a_fixed_z_ends_at_each_class(model):
    z = torch.randn(2, 3)
    path = model.interpolate_classes(z, "cat", "fish", steps=4)
    assert path.shape == (2, 4, 1, 8, 8)
    torch.testing.assert_close(path[:, 0], model.to_images(model.decode(z, labels=0)))
    torch.testing.assert_close(path[:, -1], model.to_images(model.decode(z, labels=2)))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (None, "conditional on 3 classes: pass labels= a class index in [0, 3) or a class name (cat, dog, fish)"),
        (3, "labels: 3 is not a class"),
        ("cow", "labels: 'cow' is not a class"),
        ([0, 1], "got 2 labels for 4 images"),
        (torch.tensor([0.0, 1.0, 1.0, 1.0]), "labels must be integer class indices, got dtype torch.float32"),
        (True, "labels: True is not a class"),
    ],
)
def test_bad_labels_are_refused_by_name(model, labels, expected):
    with pytest.raises(ValueError) as info:
        model.reconstruct(torch.rand(4, 1, 8, 8), labels=labels)
    assert expected in str(info.value)


def test_an_unconditional_model_refuses_labels():
    model = VariationalAutoencoder(64, 16, 2)
    with pytest.raises(ValueError, match="is not conditional .num_classes=0.: leave labels out"):
        model.sample(2, labels=0)
    with pytest.raises(ValueError, match="needs a conditional model"):
        model.interpolate_classes(torch.zeros(1, 2), 0, 1)


def test_save_and_load_keep_the_classes_and_the_weights_bit_for_bit(model, tmp_path):
    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["num_classes"] == 3 and config["class_names"] == CLASSES
    loaded = vae_hub.from_pretrained(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.class_names == CLASSES
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"class_names": "cat"}, "class_names must be null or a list of at most"),
        ({"class_names": ["a", "b"]}, "class_names has 2 names but num_classes is 3"),
        ({"num_classes": -1}, "num_classes must be an integer in [0, 100000]"),
        ({"class_names": ["x" * 300, "b", "c"]}, "names of 1 to 200 characters"),
    ],
)
def test_a_config_with_bad_classes_is_refused(model, tmp_path, change, expected):
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(vae_hub.CheckpointError) as info:
        vae_hub.from_pretrained(tmp_path / "m")
    assert expected in str(info.value)


def test_a_conditional_model_learns_to_use_its_label():
    """Two classes whose images differ only by label: after training, decoding with each label gives each image."""
    torch.manual_seed(0)
    model = VariationalAutoencoder(16, 32, 2, num_classes=2)
    x = torch.cat([torch.zeros(32, 16), torch.ones(32, 16)]) * 0.9 + 0.05
    y = torch.cat([torch.zeros(32), torch.ones(32)]).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        loss = elbo(model, x, labels=y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    samples = model.sample(8, labels=[0] * 4 + [1] * 4, generator=torch.Generator().manual_seed(1))
    means = samples.flatten(1).mean(1)
    assert (means[:4] < 0.3).all() and (means[4:] > 0.7).all()
