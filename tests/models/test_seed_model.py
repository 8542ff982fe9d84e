"""The seed's VAE and loss, by their own names."""

import torch
import torch.nn as nn

from vae_hub import VariationalAutoencoder, vae_loss_fn

# The seed's "Example run", verbatim but for the import line.
SEED_EXAMPLE = """
from vae_hub import VariationalAutoencoder, vae_loss_fn
import torch
vae = VariationalAutoencoder(input_dim=784, hidden_dim=128, latent_dim=16)
x_sample = torch.rand(4, 784)
recon, mu, logvar = vae(x_sample)
loss = vae_loss_fn(recon, x_sample, mu, logvar)
print("Total loss:", loss.item())
"""


def test_seed_example_runs_unchanged_but_for_the_import(capsys):
    namespace: dict = {}
    exec(SEED_EXAMPLE, namespace)
    out = capsys.readouterr().out
    assert out.startswith("Total loss: ")
    assert torch.isfinite(torch.tensor(float(out.split(":")[1])))
    assert namespace["recon"].shape == (4, 784)
    assert namespace["mu"].shape == namespace["logvar"].shape == (4, 16)


def test_vae_loss_fn_equals_the_seed_formula():
    recon = torch.rand(5, 784).clamp(1e-4, 1 - 1e-4)
    x = torch.rand(5, 784)
    mu, logvar = torch.randn(5, 16), torch.randn(5, 16)
    recon_loss = nn.functional.binary_cross_entropy(recon, x, reduction="sum")
    kl_loss = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    assert torch.equal(vae_loss_fn(recon, x, mu, logvar), recon_loss + kl_loss)
    # and the same thing written out by hand
    bce = -(x * recon.log() + (1 - x) * (1 - recon).log()).sum()
    torch.testing.assert_close(vae_loss_fn(recon, x, mu, logvar), bce + kl_loss)


def test_seed_structure_and_names():
    vae = VariationalAutoencoder(784, 128, 16)
    assert [type(m) for m in vae.encoder_backbone] == [nn.Linear, nn.ReLU]
    assert isinstance(vae.fc_mu, nn.Linear) and isinstance(vae.fc_logvar, nn.Linear)
    assert [type(m) for m in vae.decoder] == [nn.Linear, nn.ReLU, nn.Linear, nn.Sigmoid]
    assert vae.latent_dim == 16 and vae.image_shape == (1, 28, 28)
    x = torch.rand(3, 784)
    mu, logvar = vae.encode(x)
    h = vae.encoder_backbone(x)
    assert torch.equal(mu, vae.fc_mu(h)) and torch.equal(logvar, vae.fc_logvar(h))
    assert vae.decode(mu).shape == (3, 784)
    assert ((vae.decode(mu) >= 0) & (vae.decode(mu) <= 1)).all()


def test_forward_keeps_the_input_layout():
    vae = VariationalAutoencoder(784, 64, 4)
    assert vae(torch.rand(2, 784))[0].shape == (2, 784)
    assert vae(torch.rand(2, 1, 28, 28))[0].shape == (2, 1, 28, 28)
