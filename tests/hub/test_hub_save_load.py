"""save_pretrained / from_pretrained: bit-identical round trips and strict, clearly reported failures."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import vae_hub
from vae_hub import CheckpointError, CheckpointNotFoundError, ConvVAE, VariationalAutoencoder

LIKELIHOODS = {
    "bernoulli": {},
    "gaussian-fixed": {"likelihood": "gaussian", "gaussian_std": 0.2},
    "gaussian-learned": {"likelihood": "gaussian", "learn_std": True},
}
BUILDERS = {
    "mlp": lambda kw: VariationalAutoencoder(784, 32, 4, **kw),
    "conv": lambda kw: ConvVAE((1, 28, 28), latent_dim=4, base_channels=4, hidden_dim=16, **kw),
    "conv-rgb": lambda kw: ConvVAE((3, 32, 32), latent_dim=5, base_channels=4, hidden_dim=16, **kw),
    "conv-residual": lambda kw: ConvVAE((3, 32, 32), latent_dim=5, base_channels=4, hidden_dim=16, res_blocks=2, **kw),
}


def trained_a_little(model):
    """Move the weights away from their initial values so that a fallback to random init would show."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model.eval()


@pytest.mark.parametrize("likelihood", sorted(LIKELIHOODS))
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_save_load_gives_bit_identical_outputs(tmp_path, kind, likelihood):
    model = trained_a_little(BUILDERS[kind](LIKELIHOODS[likelihood]))
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == type(model).__name__
    assert config["likelihood"] == LIKELIHOODS[likelihood].get("likelihood", "bernoulli")

    for loaded in (type(model).from_pretrained(tmp_path / "m"), vae_hub.from_pretrained(str(tmp_path / "m"))):
        assert type(loaded) is type(model) and not loaded.training
        x = torch.rand(4, *model.image_shape)
        z = torch.randn(4, model.latent_dim)
        assert torch.equal(loaded.decode(z), model.decode(z))
        assert all(torch.equal(a, b) for a, b in zip(loaded.encode(x), model.encode(x), strict=True))
        g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        assert torch.equal(loaded.sample(3, generator=g1), model.sample(3, generator=g2))
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key


def test_the_model_card_carries_the_hub_metadata(tmp_path):
    VariationalAutoencoder(784, 8, 2).save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert "library_name: vae-hub" in card and "license: mit" in card
    assert "variational-autoencoder" in card and "pipeline_tag: unconditional-image-generation" in card


def test_nothing_is_pickled(tmp_path):
    ConvVAE(latent_dim=2, base_channels=2, hidden_dim=4).save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    assert (tmp_path / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors: 8-byte length, JSON header


@pytest.fixture
def saved(tmp_path):
    model = trained_a_little(VariationalAutoencoder(784, 32, 4))
    model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def writes(name, data):
    def go(folder):
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        return folder

    return go


def removes(name):
    def go(folder):
        (folder / name).unlink()
        return folder

    return go


def truncates(name, size):
    def go(folder):
        path = folder / name
        path.write_bytes(path.read_bytes()[:size])
        return folder

    return go


def edits_weights(change):
    def go(folder):
        state = load_file(folder / "model.safetensors")
        change(state)
        save_file(state, folder / "model.safetensors")
        return folder

    return go


BAD_LOADS = {
    "path does not exist": (lambda d: d.parent / "nope", CheckpointNotFoundError, "local folder .*nope does not exist"),
    "path is a file": (lambda d: d / "config.json", CheckpointNotFoundError, "is a file; expected a model folder"),
    "no config.json": (removes("config.json"), CheckpointNotFoundError, "config.json does not exist"),
    "no weights": (removes("model.safetensors"), CheckpointNotFoundError, "model.safetensors does not exist"),
    "corrupt weights": (
        writes("model.safetensors", b"\x00garbage" * 10),
        CheckpointError,
        "model.safetensors of .* is not a valid safetensors file",
    ),
    "truncated weights": (
        truncates("model.safetensors", 500),
        CheckpointError,
        "not a valid safetensors file: its header claims",
    ),
    "missing weights": (
        edits_weights(lambda s: s.pop("fc_mu.weight")),
        CheckpointError,
        r"missing weights \['fc_mu.weight'\]",
    ),
    "unexpected weights": (
        edits_weights(lambda s: s.update(extra=torch.zeros(2))),
        CheckpointError,
        r"unexpected weights \['extra'\]",
    ),
    "mis-shaped weights": (
        edits_weights(lambda s: s.update({"fc_mu.bias": torch.zeros(7)})),
        CheckpointError,
        r"mis-shaped weights \[fc_mu.bias: file \(7,\) vs model \(4,\)\]",
    ),
    "corrupt config": (writes("config.json", "{not json"), CheckpointError, "config.json of .* is not valid JSON"),
    "config without model_type": (writes("config.json", '{"input_dim": 784}'), CheckpointError, "no 'model_type'"),
    "unknown model_type": (
        writes("config.json", '{"model_type": "GAN"}'),
        CheckpointError,
        "is a 'GAN', which vae-hub does not know",
    ),
    "invalid config values": (
        writes("config.json", '{"model_type": "VariationalAutoencoder", "latent_dim": -3}'),
        CheckpointError,
        r"does not describe a valid VariationalAutoencoder: latent_dim must be an integer in \[1, 65536\], got -3",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LOADS))
def test_bad_loads_raise_errors_that_name_the_problem(saved, case):
    break_it, error, message = BAD_LOADS[case]
    target = break_it(saved)
    for load in (vae_hub.from_pretrained, VariationalAutoencoder.from_pretrained):
        with pytest.raises(error, match=message):
            load(str(target))


def test_loading_with_the_wrong_class_says_which_class_it_is(saved):
    with pytest.raises(CheckpointError, match="holds a VariationalAutoencoder, not a ConvVAE"):
        ConvVAE.from_pretrained(saved)


def test_an_unreachable_hub_is_reported_not_replaced_by_random_weights(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # skip huggingface_hub's retry back-off
    with pytest.raises(CheckpointError, match="could not reach the Hub"):
        vae_hub.from_pretrained("someone/some-vae")
    with pytest.raises(CheckpointNotFoundError, match="neither an existing local folder nor a valid Hub repo id"):
        vae_hub.from_pretrained("not a repo id")


def test_save_overwrites_atomically(saved):
    model = trained_a_little(VariationalAutoencoder(784, 32, 4))
    model.save_pretrained(saved)
    assert not [p for p in saved.iterdir() if ".tmp" in p.name]
    z = torch.randn(2, 4)
    assert torch.equal(vae_hub.from_pretrained(saved).decode(z), model.decode(z))


def test_a_loaded_model_owns_its_weights(tmp_path):
    """The weights are read into memory of their own: rewriting the file in place later cannot touch the model
    (tensors backed by a memory map of the file would crash the process with SIGBUS here)."""
    model = trained_a_little(VariationalAutoencoder(784, 32, 4))
    model.save_pretrained(tmp_path / "m")
    loaded = vae_hub.from_pretrained(tmp_path / "m")
    with open(tmp_path / "m" / "model.safetensors", "r+b") as f:
        f.truncate(100)
    z = torch.randn(3, 4)
    assert torch.equal(loaded.decode(z), model.decode(z))


def test_weights_stored_in_another_float_dtype_load_as_the_models(tmp_path):
    model = trained_a_little(VariationalAutoencoder(784, 32, 4))
    model.save_pretrained(tmp_path / "m")
    state = {k: v.half() for k, v in load_file(tmp_path / "m" / "model.safetensors").items()}
    save_file(state, tmp_path / "m" / "model.safetensors")
    loaded = vae_hub.from_pretrained(tmp_path / "m")
    assert loaded.dtype == torch.float32
    assert torch.equal(loaded.fc_mu.weight, state["fc_mu.weight"].float())


@pytest.mark.slow  # a fresh interpreter, to see what loading imports
def test_loading_any_architecture_imports_no_compiler(tmp_path):
    """from_pretrained builds the model on the meta device to check its config; arithmetic there (an init's scale,
    nn.Embedding's normal_) imports torch._dynamo and triton: ~150 MB in a Space that loads a VQ-VAE or VampPrior."""
    from vae_hub.models.hierarchical import HierarchicalVAE
    from vae_hub.models.vqvae import VQVAE

    models = {
        "vamp": VariationalAutoencoder(784, 16, 2, prior="vamp", pseudo_inputs=4),
        "conv": ConvVAE((1, 28, 28), latent_dim=2, base_channels=4, hidden_dim=8),
        "hvae": HierarchicalVAE((1, 28, 28), latent_dim=2, latent_channels=1, base_channels=4, hidden_dim=8),
        "vqvae": VQVAE(
            num_codes=16, code_dim=4, base_channels=8, res_blocks=1, prior_width=16, prior_layers=1, prior_heads=2
        ),  # fmt: skip
    }
    for name, model in models.items():
        model.save_pretrained(tmp_path / name)
    script = (
        "import sys, vae_hub\n"
        "for folder in sys.argv[1:]:\n"
        "    vae_hub.from_pretrained(folder)\n"
        "print(' '.join(m for m in ('torch._dynamo', 'triton') if m in sys.modules))\n"
    )
    folders = [str(tmp_path / name) for name in models]
    result = subprocess.run([sys.executable, "-c", script, *folders], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "", f"loading imported {result.stdout.strip()}"
