"""The VampPrior: its density, its KL, its samples, its likelihood bound and its files."""

import math

import pytest
import torch
from torch import distributions as D

from vae_hub import ConvVAE, VariationalAutoencoder, elbo, from_pretrained, importance_sampled_log_likelihood
from vae_hub.models.objectives import iwae
from vae_hub.models.posterior import diagonal_normal_log_prob, diagonal_normal_log_prob_each


def vamp_mlp(latent: int = 4, k: int = 6, hidden: int = 32) -> VariationalAutoencoder:
    torch.manual_seed(0)
    return VariationalAutoencoder(784, hidden, latent, prior="vamp", pseudo_inputs=k).eval()


def reference_prior(model) -> D.MixtureSameFamily:
    """The VampPrior as torch.distributions writes it: K equally weighted diagonal Gaussians."""
    q = model.prior_components()
    k = q.mean.shape[0]
    return D.MixtureSameFamily(D.Categorical(torch.ones(k)), D.Independent(D.Normal(q.mean, q.std), 1))


def test_the_prior_density_is_the_mixture_of_the_pseudo_inputs_posteriors():
    model = vamp_mlp()
    z = torch.randn(3, 5, 4) * 2
    with torch.no_grad():
        torch.testing.assert_close(model.prior_log_prob(z), reference_prior(model).log_prob(z), atol=1e-4, rtol=1e-5)
        images = torch.sigmoid(model.pseudo_inputs)
        torch.testing.assert_close(model.prior_components().mean, model.encode(images.flatten(1)).mean)


def test_the_density_against_each_gaussian_by_matmul_is_the_direct_one():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(7, 3, 20, generator=gen) * 3
    mu, logvar = torch.randn(50, 20, generator=gen) * 2, torch.randn(50, 20, generator=gen)
    direct = diagonal_normal_log_prob(z.unsqueeze(-2), mu, logvar)
    torch.testing.assert_close(diagonal_normal_log_prob_each(z, mu, logvar), direct, atol=1e-3, rtol=1e-5)


def test_the_kl_is_the_one_draw_estimate_and_each_dimension_is_measured_against_its_marginal():
    model = vamp_mlp()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        q = model.encode(x)
        z = q.sample(generator=torch.Generator().manual_seed(0))
        kl, per_dim = model.kl_to_prior(q, z)
        prior = reference_prior(model)
        torch.testing.assert_close(kl, q.log_prob(z) - prior.log_prob(z), atol=1e-4, rtol=1e-5)
        c = model.prior_components()
        marginal = D.MixtureSameFamily(D.Categorical(torch.ones(4, 6)), D.Normal(c.mean.T, c.std.T))  # per dimension
        log_q_d = D.Normal(q.mean, q.std).log_prob(z)
        torch.testing.assert_close(per_dim, log_q_d - marginal.log_prob(z), atol=1e-4, rtol=1e-5)
        # averaged over many draws, the estimate is the KL, which is >= 0
        draws = q.sample(20_000, generator=torch.Generator().manual_seed(1))
        assert (model.kl_to_prior(q, draws)[0].mean(0) > 0).all()


def test_the_standard_prior_keeps_the_closed_form():
    model = VariationalAutoencoder(784, 32, 4).eval()
    q = model.encode(torch.rand(3, 784))
    kl, per_dim = model.kl_to_prior(q, q.sample())
    torch.testing.assert_close(per_dim, q.kl_per_dim())
    torch.testing.assert_close(kl, q.kl())


def test_samples_come_from_the_components_and_temperature_zero_decodes_their_means():
    model = vamp_mlp(k=3)
    with torch.no_grad():
        cold = model.sample(12, temperature=0.0, generator=torch.Generator().manual_seed(0))
        means = model.to_images(model.decode(model.prior_components().mean))
    for image in cold:  # each cold sample is the decoded mean of one component
        assert min(float((image - m).abs().max()) for m in means) < 1e-5
    a = model.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, model.sample(4, generator=torch.Generator().manual_seed(3)))


def test_training_moves_the_pseudo_inputs_and_overfits_a_batch(binary_batch):
    model = vamp_mlp(latent=8, k=10, hidden=64).train()
    before = model.pseudo_inputs.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        out = elbo(model, binary_batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.total.mean().item())
    assert not torch.equal(before, model.pseudo_inputs)
    assert losses[0] > 540 and losses[-1] < 0.5 * losses[0], losses[::50]


def test_the_nll_bound_is_below_the_likelihood_integrated_on_a_grid():
    """4x4 images and a 2-D latent space: log p(x) = log ∫ p(x|z) p(z) dz by quadrature on a fine grid; the
    importance-weighted bounds must rise with k and stay below it, and k = 5,000 must reach it."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 16, generator=g) > 0.5).float()
    data = (protos[torch.randint(0, 3, (96,), generator=g)] + (torch.rand(96, 16, generator=g) < 0.1)) % 2
    model = VariationalAutoencoder(16, 32, 2, prior="vamp", pseudo_inputs=5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = elbo(model, data).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x = protos
    with torch.no_grad():
        side = torch.linspace(-10, 10, 1001)
        grid = torch.cartesian_prod(side, side)  # (1001², 2)
        log_px_z = -model.reconstruction_nll(model.decode_logits(grid)[:, None], x[None])  # (G, 3)
        log_joint = log_px_z + model.prior_log_prob(grid)[:, None]
        log_px = torch.logsumexp(log_joint, 0) + 2 * math.log(float(side[1] - side[0]))
        bounds = {k: iwae(model, x.repeat(2000, 1), k, generator=g).iw_bound.reshape(2000, 3).mean(0) for k in (1, 10)}
        nll_k = importance_sampled_log_likelihood(model, x, k=5000, generator=g)
    assert (bounds[1] < bounds[10]).all() and (bounds[10] < log_px + 0.02).all(), (bounds, log_px)
    torch.testing.assert_close(nll_k, log_px, atol=0.05, rtol=0)
    assert (log_px - bounds[1]).mean() > 0.05, "a fitted posterior leaves a gap that more samples close"


@pytest.mark.parametrize("build", [lambda: vamp_mlp(), lambda: ConvVAE(latent_dim=3, base_channels=4, hidden_dim=8,
                                                                        prior="vamp", pseudo_inputs=4)])  # fmt: skip
def test_save_and_load_keep_the_pseudo_inputs_bit_for_bit(tmp_path, build):
    model = build().eval()
    model.save_pretrained(tmp_path / "m")
    loaded = from_pretrained(tmp_path / "m")
    assert loaded.prior == "vamp" and torch.equal(loaded.pseudo_inputs, model.pseudo_inputs)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(model.sample(3, generator=g()), loaded.sample(3, generator=g()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": "flat"}, "prior must be one of"),
        ({"prior": "vamp", "pseudo_inputs": 0}, "pseudo_inputs must be a positive integer"),
        ({"prior": "vamp", "num_classes": 3}, "for an unconditional VAE"),
        ({"prior": "vamp", "deterministic": True}, "for an unconditional VAE"),
    ],
)
def test_bad_prior_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VariationalAutoencoder(784, 8, 2, **kwargs)


def test_free_bits_need_the_closed_form_kl(binary_batch):
    with pytest.raises(ValueError, match="free_bits floors a closed-form KL"):
        elbo(vamp_mlp(), binary_batch, free_bits=0.5)
