"""Importance-sampled log-likelihood, KL per dimension and active units."""

import math

import pytest
import torch

from vae_hub import (
    ConvVAE,
    VariationalAutoencoder,
    active_units,
    elbo,
    gaussian_kl,
    importance_sampled_log_likelihood,
    kl_per_dimension,
    posterior_estimate,
    posterior_mean_variance,
)
from vae_hub.evaluation import metrics
from vae_hub.evaluation.summary import evaluate


@pytest.fixture
def trained():
    """A small MLP VAE trained briefly on structured binary data (two prototype patterns plus noise)."""
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(4, 784, generator=g) > 0.5).float()
    idx = torch.randint(0, 4, (256,), generator=g)
    flips = (torch.rand(256, 784, generator=g) < 0.05).float()
    data = (protos[idx] + flips) % 2
    model = VariationalAutoencoder(784, 64, 6)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        out = elbo(model, data)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return model.eval(), data


def test_iwae_is_above_the_elbo_and_does_not_decrease_with_k(trained):
    model, data = trained
    x = data[:32]
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        elbo_mean = torch.stack([elbo(model, x, generator=g).elbo for _ in range(50)]).mean().item()
    estimates = {
        k: importance_sampled_log_likelihood(model, x, k=k, generator=g).mean().item() for k in (1, 10, 100, 1000)
    }
    assert abs(estimates[1] - elbo_mean) < 2.0  # k = 1 is the ELBO itself
    assert estimates[10] >= elbo_mean
    assert estimates[1] <= estimates[10] <= estimates[100] + 0.05 <= estimates[1000] + 0.1


@pytest.mark.parametrize("codes_per_block", [None, 3 * 64 * 8 * 6])  # all codes at once, or 3 chunks' at a time
def test_iwae_chunks_combine_exactly_like_one_logsumexp(trained, monkeypatch, codes_per_block):
    model, data = trained
    x = data[:8]
    k, per_chunk = 5000, 64  # max_decoded=512 over 8 images: 64 samples per chunk, 79 chunks
    if codes_per_block:
        monkeypatch.setattr(metrics, "LATENT_BLOCK", codes_per_block)
    chunked = importance_sampled_log_likelihood(
        model, x, k=k, max_decoded=512, generator=torch.Generator().manual_seed(5)
    )
    assert chunked.shape == (8,) and torch.isfinite(chunked).all()

    # reference: the same noise, all k log-weights at once, one logsumexp
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        sizes = [min(per_chunk, k - i) for i in range(0, k, per_chunk)]
        eps = torch.cat([torch.randn((c, *mu.shape), generator=g) for c in sizes])
        z = mu + (0.5 * logvar).exp() * eps
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
        p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        px = torch.distributions.Bernoulli(probs=model.decode(z.reshape(-1, 6)).reshape(k, 8, 784))
        log_w = px.log_prob(x.flatten(1)).sum(-1) + p - q
        reference = torch.logsumexp(log_w, 0) - torch.log(torch.tensor(float(k)))
    torch.testing.assert_close(chunked, reference, atol=1e-3, rtol=1e-5)


def test_iwae_is_stable_for_very_unlikely_data():
    model = VariationalAutoencoder(784, 16, 2)
    with torch.no_grad():
        model.decoder[2].bias.fill_(30.0)  # p(x=1) ~ 1: all-zero images get log-likelihoods of about -23,000
    ll = importance_sampled_log_likelihood(model, torch.zeros(3, 784), k=100)
    assert torch.isfinite(ll).all() and (ll < -1000).all()


def test_active_units_counts_dimensions_whose_posterior_mean_varies(trained):
    model, data = trained
    with torch.no_grad():  # dims 0 and 1 ignore the input: Var_x(E_q[z_d]) = 0
        model.fc_mu.weight[:2] = 0.0
    variance = posterior_mean_variance(model, data)
    assert variance.shape == (6,) and (variance[:2] == 0).all()
    n_active = active_units(model, data)
    assert n_active == int((variance > 0.01).sum()) and 1 <= n_active <= 4
    assert active_units(model, data, threshold=float("inf")) == 0


def test_kl_per_dimension_is_the_data_mean_of_the_closed_form(trained):
    model, data = trained
    batches = [(x, torch.zeros(len(x))) for x in data.split(100)]  # (x, label) pairs, like a DataLoader
    kl = kl_per_dimension(model, batches)
    out = elbo(model, data)
    torch.testing.assert_close(kl, out.kl_per_dim.mean(0).detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(kl.sum(), out.kl.mean().detach(), atol=1e-3, rtol=1e-4)


def test_posterior_estimate_averages_the_one_sample_elbo(trained):
    model, x = trained
    x = x[:16]
    estimate = posterior_estimate(model, x, samples=2000, generator=torch.Generator().manual_seed(1))
    assert estimate.samples.shape == (2000, 16, *model.image_shape)
    mu, logvar = model.encode(x)
    assert torch.allclose(estimate.kl_per_dim, gaussian_kl(mu, logvar))
    g = torch.Generator().manual_seed(2)
    one_sample = torch.stack([elbo(model, x, generator=g).recon.detach() for _ in range(400)]).mean(0)
    assert torch.allclose(estimate.recon, one_sample, rtol=0.02), "the same expectation, estimated two ways"
    assert torch.equal(estimate.elbo, -(estimate.recon + estimate.kl))


def test_the_bernoulli_floor_is_the_images_own_entropy_and_bounds_the_reconstruction():
    from vae_hub.evaluation.summary import evaluate

    model = VariationalAutoencoder(784, 16, 2)
    half = torch.full((10, 1, 28, 28), 0.5)
    result = evaluate(model, half, k=10)
    assert result["bernoulli_floor"] == pytest.approx(784 * math.log(2), rel=1e-5)  # every pixel 1 bit
    assert result["recon"] >= result["bernoulli_floor"] and result["nll"] >= result["bernoulli_floor"]
    assert result["nll_bits_per_dim"] == pytest.approx(result["nll"] / (784 * math.log(2)))
    assert evaluate(model, half.round(), k=0)["bernoulli_floor"] == 0  # binary images: no floor


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_bf16_decoding_moves_the_nll_by_hundredths(kind: str) -> None:
    torch.manual_seed(0)
    conv = ConvVAE(latent_dim=8, base_channels=8, hidden_dim=32)
    model = VariationalAutoencoder(784, 64, 8) if kind == "mlp" else conv
    x = torch.rand(16, 1, 28, 28)
    full = evaluate(model, x, k=64, seed=0, precision="fp32")
    half = evaluate(model, x, k=64, seed=0, precision="bf16")
    assert half["nll_precision"] == "bf16" and full["nll_precision"] == "fp32"
    assert half["nll"] == pytest.approx(full["nll"], abs=0.1)  # same z draws: only the decoder's rounding differs
    assert half["loss"] == full["loss"]  # the ELBO itself stays in fp32
    assert all(p.is_contiguous() for p in model.parameters())  # the caller's model keeps its layout (a copy ran)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        evaluate(VariationalAutoencoder(784, 16, 2), torch.rand(2, 784), k=4, precision="fp16")
