"""The VQ-VAE as a model: shapes, the Hub round trip, its first stage overfitting a batch, the bound's two terms, and
clear errors for bad codes, images and configs."""

import json

import pytest
import torch

import vae_hub
from vae_hub.errors import CheckpointError
from vae_hub.models.objectives import bernoulli_nll
from vae_hub.models.vqvae import VQVAE, vq_loss


def tiny(**overrides) -> VQVAE:
    torch.manual_seed(0)
    config = dict(num_codes=16, code_dim=4, base_channels=8, res_blocks=1, prior_width=16, prior_layers=1,
                  prior_heads=2) | overrides  # fmt: skip
    return VQVAE(**config)


def test_every_output_has_the_shape_of_the_images_or_the_code_grid():
    model = tiny().eval()
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    assert out.logits.shape == (3, 1, 28, 28) and model.grid == (7, 7)
    codes = model.encode_codes(x)
    assert codes.shape == (3, 7, 7) and codes.dtype == torch.long and int(codes.max()) < 16
    assert model.decode_codes(codes).shape == (3, 1, 28, 28)
    assert model.reconstruct(x.flatten(1)).shape == (3, 784)  # in the layout it was given
    samples = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 1, 28, 28) and float(samples.min()) >= 0 and float(samples.max()) <= 1


def test_save_and_load_give_the_same_weights_bit_for_bit_and_the_generic_loader_finds_the_class(tmp_path):
    model = tiny().eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "VQVAE"
    loaded = vae_hub.from_pretrained(tmp_path)
    assert isinstance(loaded, VQVAE) and isinstance(VQVAE.from_pretrained(tmp_path), VQVAE)
    original, back = model.state_dict(), loaded.state_dict()
    assert original.keys() == back.keys()
    assert all(torch.equal(original[k], back[k]) for k in original)
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))


def test_the_first_stage_overfits_a_batch():
    model = tiny(num_codes=32).train()
    x = (torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = float(vq_loss(model, x).recon_sum.detach()) / 8
    for _ in range(150):
        optimizer.zero_grad()
        vq_loss(model, x).loss.backward()
        optimizer.step()
    last = float(vq_loss(model.eval(), x).recon_sum.detach()) / 8
    assert last < 0.7 * first, (first, last)


def test_the_bound_is_the_reconstruction_term_plus_the_code_length():
    model = tiny().eval()
    x = torch.rand(4, 1, 28, 28)
    recon, code_length = model.nll_bound(x)
    assert recon.shape == code_length.shape == (4,)
    codes = model.encode_codes(x)
    logits = torch.logit(model.decode_codes(codes), 1e-7).flatten(1)
    torch.testing.assert_close(recon, bernoulli_nll(logits, x.flatten(1)), rtol=1e-3, atol=1e-2)
    torch.testing.assert_close(code_length, -model.code_prior.log_prob(codes))
    assert (code_length > 0).all()
    assert 1.0 <= model.perplexity(x) <= 16.0


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (torch.zeros(2, 7, 7), "integer code grids of shape \\(B, 7, 7\\).*got dtype torch.float32"),
        (torch.zeros(2, 6, 7, dtype=torch.long), "got shape \\(2, 6, 7\\)"),
        (torch.full((1, 7, 7), 16), "values in \\[0, 16\\).*got values in \\[16, 16\\]"),
    ],
)
def test_bad_code_grids_are_refused_saying_what_is_expected(codes, message):
    with pytest.raises(ValueError, match=message):
        tiny().decode_codes(codes)


def test_bad_images_and_arguments_are_refused_by_name():
    model = tiny()
    with pytest.raises(ValueError, match="VQVAE expects pixel values in \\[0, 1\\]"):
        model.reconstruct(torch.full((1, 1, 28, 28), 2.0))
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        model.sample(1, temperature=-1)
    with pytest.raises(ValueError, match="not conditional"):
        model.sample(1, labels=torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="prior_heads|divisible|heads"):
        tiny(prior_width=15, prior_heads=2)


@pytest.mark.parametrize(
    ("field", "value"), [("num_codes", 10**9), ("code_dim", -1), ("decay", "0.9"), ("prior_layers", 10**6)]
)
def test_a_hostile_config_is_refused_by_field_before_anything_is_built(tmp_path, field, value):
    tiny().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config | {field: value}))
    with pytest.raises(CheckpointError, match=field):
        vae_hub.from_pretrained(tmp_path)
