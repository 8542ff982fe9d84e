"""The ELBO, its parts, and the remedies for posterior collapse."""

import math

import pytest
import torch

from vae_hub import ConvVAE, VariationalAutoencoder, elbo, gaussian_kl, iwae, kl_warmup, vae_loss_fn
from vae_hub.models.objectives import bernoulli_entropy_sum, bernoulli_nll, gaussian_nll, sum_of_logs


def test_gradients_reach_the_encoder_through_the_reparameterization(binary_batch):
    model = VariationalAutoencoder(784, 32, 4)
    mu, logvar = model.encode(binary_batch)
    z = model.reparameterize(mu, logvar)
    recon = model.decode(z)
    # reconstruction term alone: only the path through z = mu + sigma * eps reaches the encoder
    torch.nn.functional.binary_cross_entropy(recon, binary_batch.flatten(1), reduction="sum").backward()
    for p in [*model.encoder_backbone.parameters(), *model.fc_mu.parameters(), *model.fc_logvar.parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_reparameterize_samples_from_the_posterior():
    model = VariationalAutoencoder(784, 8, 3)
    mu = torch.tensor([[1.0, -2.0, 0.5]]).expand(200_000, 3)
    logvar = torch.tensor([[0.0, math.log(4.0), math.log(0.25)]]).expand(200_000, 3)
    z = model.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z.mean(0), mu[0], atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 2.0, 0.5]), atol=0.02, rtol=0)


def test_closed_form_kl_matches_monte_carlo():
    mu, logvar = torch.tensor([0.7, -1.2, 0.0]), torch.tensor([-0.5, 0.8, 0.0])
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    z = q.sample((400_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).mean(0)
    torch.testing.assert_close(gaussian_kl(mu, logvar), monte_carlo, atol=0.01, rtol=0)
    assert gaussian_kl(torch.zeros(2), torch.zeros(2)).abs().max() == 0  # q = prior


def test_likelihoods_match_torch_distributions():
    x = (torch.rand(4, 10) > 0.5).float()
    logits = torch.randn(4, 10) * 3
    expected = -torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(bernoulli_nll(logits, x), expected)
    probs = torch.sigmoid(logits)
    log_std = torch.tensor(-1.3)
    expected = -torch.distributions.Normal(probs, log_std.exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_nll(probs, x, log_std), expected)


def test_the_bernoulli_likelihood_without_autograd_broadcasts_either_way_like_the_autograd_path():
    # k draws of a batch: logits (k, B, D) against x (B, D), and one batch's logits against k copies of x
    x, logits = torch.rand(3, 10), torch.randn(5, 3, 10) * 4
    expected = (torch.nn.functional.softplus(logits) - logits * x).sum(-1)
    with torch.no_grad():
        torch.testing.assert_close(bernoulli_nll(logits, x), expected)
        torch.testing.assert_close(bernoulli_nll(logits[0], x.expand(5, 3, 10)), expected[0].expand(5, 3))
        torch.testing.assert_close(bernoulli_nll(logits.bfloat16(), x), expected, atol=0.2, rtol=0.01)


def test_the_bernoulli_floor_is_the_pixels_binary_entropy_from_uint8_or_float():
    pixels = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    pixels[0, 0, 0, :3] = torch.tensor([0, 255, 128], dtype=torch.uint8)  # both ends: 0 ln 0 counts as 0
    unit = pixels.double() / 255
    expected = float(torch.nn.functional.binary_cross_entropy(unit, unit, reduction="sum"))
    assert bernoulli_entropy_sum(pixels) == pytest.approx(expected, rel=1e-9)  # the histogram x table path
    assert bernoulli_entropy_sum(unit.float()) == pytest.approx(expected, rel=1e-6)
    assert bernoulli_entropy_sum(unit.round()) == 0  # binary images carry no entropy to reconstruct


def test_elbo_parts_add_up_and_match_the_seed_loss(binary_batch):
    model = VariationalAutoencoder(784, 32, 4)
    out = elbo(model, binary_batch, generator=torch.Generator().manual_seed(3))
    assert out.total.shape == out.recon.shape == out.kl.shape == (8,)
    assert out.kl_per_dim.shape == (8, 4)
    torch.testing.assert_close(out.total, out.recon + out.kl)
    torch.testing.assert_close(out.elbo, -out.total)
    torch.testing.assert_close(out.loss, out.total_sum)
    torch.testing.assert_close(out.kl, gaussian_kl(out.mu, out.logvar).sum(-1))
    seed = vae_loss_fn(out.recon_x.flatten(1), binary_batch.flatten(1), out.mu, out.logvar)
    torch.testing.assert_close(out.loss, seed, rtol=1e-5, atol=1e-3)  # logits vs. probabilities: rounding only


def test_beta_weights_only_the_kl_term(binary_batch):
    model = VariationalAutoencoder(784, 32, 4)
    a = elbo(model, binary_batch, beta=1.0, generator=torch.Generator().manual_seed(0))
    b = elbo(model, binary_batch, beta=4.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(b.loss, a.recon_sum + 4.0 * a.kl_sum)
    torch.testing.assert_close(b.total, a.total)  # the reported ELBO is the true one


def test_free_bits_floor_the_kl_per_dimension(binary_batch):
    model = VariationalAutoencoder(784, 32, 4)
    with torch.no_grad():  # make q(z|x) equal to the prior: every KL is 0
        for head in (model.fc_mu, model.fc_logvar):
            head.weight.zero_()
            head.bias.zero_()
    out = elbo(model, binary_batch, free_bits=0.5)
    assert out.kl_sum == 0
    torch.testing.assert_close(out.loss, out.recon_sum + 0.5 * 4 * 8)
    # below the floor, the KL term sends no gradient to the encoder heads
    (out.loss - out.recon_sum).backward()
    assert model.fc_mu.weight.grad.abs().sum() == 0 and model.fc_logvar.bias.grad.abs().sum() == 0


def test_gaussian_likelihood_with_learned_std(binary_batch):
    model = ConvVAE(latent_dim=4, base_channels=4, hidden_dim=16, likelihood="gaussian", learn_std=True)
    out = elbo(model, binary_batch)
    out.loss.backward()
    assert model.log_std.grad is not None and model.log_std.grad != 0
    fixed = ConvVAE(latent_dim=4, base_channels=4, hidden_dim=16, likelihood="gaussian", gaussian_std=0.2)
    assert not fixed.log_std.requires_grad
    torch.testing.assert_close(fixed.log_std, torch.tensor(math.log(0.2)))


def test_kl_warmup_schedule():
    assert [kl_warmup(s, 4) for s in (0, 1, 2, 4, 10)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert kl_warmup(5, 0, beta=2.0) == 2.0
    assert kl_warmup(1, 2, beta=4.0) == 2.0
    with pytest.raises(ValueError, match="warmup_steps"):
        kl_warmup(1, -1)


def test_elbo_rejects_bad_weights(binary_batch):
    model = VariationalAutoencoder(784, 8, 2)
    with pytest.raises(ValueError, match="beta"):
        elbo(model, binary_batch, beta=-1)
    with pytest.raises(ValueError, match="free_bits"):
        elbo(model, binary_batch, free_bits=float("nan"))


@pytest.mark.parametrize("cls", [VariationalAutoencoder, ConvVAE])
def test_a_tiny_model_overfits_a_small_batch(cls, binary_batch):
    model = cls(latent_dim=8) if cls is ConvVAE else cls(784, 128, 8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        out = elbo(model, binary_batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = first if first is not None else out.total.mean().item()
    final = elbo(model, binary_batch).total.mean().item()
    # random binary pixels cost 784 * log 2 = 543 nats without memorisation
    assert first > 540 and final < 0.5 * first


# --- the importance-weighted bound (IWAE) ----------------------------------------------------------------------
def trained_tiny_model() -> tuple[VariationalAutoencoder, torch.Tensor]:
    """A small MLP VAE fitted for a few hundred steps to blob images: a posterior that differs from the prior."""
    from idx_data import make_images

    torch.manual_seed(0)
    images = (make_images(256, 0)[0].float() / 255).bernoulli(generator=torch.Generator().manual_seed(0)).unsqueeze(1)
    model = VariationalAutoencoder(784, 64, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(300):
        batch = images[(step * 32) % 256 :][:32]
        loss = elbo(model, batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), images[:4]


def mean_and_error(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over the first dimension and its standard error."""
    return values.mean(0), values.std(0) / math.sqrt(values.shape[0])


def test_iwae_with_one_sample_is_the_elbo_in_expectation():
    from vae_hub.models.objectives import iwae

    model, x = trained_tiny_model()
    repeats = 20_000
    with torch.no_grad():
        many = x.repeat(repeats, 1, 1, 1)
        g = torch.Generator().manual_seed(1)
        bound = iwae(model, many, 1, generator=g).iw_bound.reshape(repeats, len(x))
        negative_elbo = elbo(model, many, generator=g).total.reshape(repeats, len(x))
    (iw, iw_err), (el, el_err) = mean_and_error(bound), mean_and_error(-negative_elbo)
    # L_1 uses the sampled log q - log p, the ELBO the closed-form KL: same expectation
    assert ((iw - el).abs() < 4 * (iw_err**2 + el_err**2).sqrt()).all(), (iw, el)


def test_the_iwae_bound_tightens_with_k_and_stays_below_the_likelihood():
    from vae_hub.evaluation.metrics import importance_sampled_log_likelihood
    from vae_hub.models.objectives import iwae

    model, x = trained_tiny_model()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        bounds = {
            k: iwae(model, x.repeat(400, 1, 1, 1), k, generator=g).iw_bound.reshape(400, len(x)).mean(0)
            for k in (1, 5, 50)
        }
        log_px = importance_sampled_log_likelihood(model, x, k=20_000, generator=g)
    assert (bounds[1] < bounds[5]).all() and (bounds[5] < bounds[50]).all(), bounds
    assert (bounds[50] < log_px + 0.05).all()
    assert (bounds[50] - bounds[1]).mean() > 0.5, "a fitted posterior leaves a gap that more samples close"


def test_iwae_gradients_reach_encoder_and_decoder(binary_batch):
    from vae_hub.models.objectives import iwae

    model = VariationalAutoencoder(784, 32, 4)
    out = iwae(model, binary_batch, 5)
    assert out.loss.shape == () and out.iw_bound.shape == (binary_batch.shape[0],)
    assert out.logits.shape == binary_batch.shape  # the first sample's decoding, in the layout of x
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_forward_with_samples_draws_k_codes_per_image(binary_batch):
    model = ConvVAE((1, 28, 28), latent_dim=3, base_channels=4, hidden_dim=16)
    out = model(binary_batch, samples=6)
    recon, mu, logvar, z = out.recon_x, out.posterior.mean, out.posterior.logvar, out.z
    assert recon.shape == (6, *binary_batch.shape) and z.shape == (6, binary_batch.shape[0], 3)
    assert mu.shape == logvar.shape == (binary_batch.shape[0], 3)
    assert not torch.equal(z[0], z[1])


def test_the_residual_convvae_is_deeper_and_overfits_a_batch(binary_batch):
    plain = ConvVAE(latent_dim=8, base_channels=8, hidden_dim=32)
    model = ConvVAE(latent_dim=8, base_channels=8, hidden_dim=32, res_blocks=2)
    blocks = [m for m in model.modules() if type(m).__name__ == "ResidualBlock"]
    assert len(blocks) == 2 * 2 * 2  # 2 per resolution, 2 resolutions, encoder and decoder
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in plain.parameters())
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = elbo(model, binary_batch).recon.mean().item()
    for _ in range(150):
        out = elbo(model, binary_batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    assert elbo(model, binary_batch).recon.mean().item() < 0.6 * start  # random pixels, memorised


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_under_bf16_autocast_the_loss_is_summed_in_fp32(objective):
    """The heads are bf16 under autocast; the ELBO's terms are not: their sums keep fp32's resolution."""
    torch.manual_seed(0)
    model = ConvVAE(image_shape=(1, 28, 28), latent_dim=8).eval()
    x = torch.rand(256, 1, 28, 28)

    def run() -> object:
        g = torch.Generator().manual_seed(1)
        return elbo(model, x, generator=g) if objective == "elbo" else iwae(model, x, 4, generator=g)

    fp32 = run()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = run()
    assert bf16.recon.dtype == bf16.kl.dtype == bf16.loss.dtype == torch.float32
    assert bf16.recon_sum.item() % 1 != 0  # a bf16 sum of ~140,000 nats would be a multiple of 1,024
    # only the network's bf16 arithmetic differs: a fraction of a nat per image, not a sum's rounding
    assert abs(bf16.total_sum.item() - fp32.total_sum.item()) / len(x) < 1.0


@pytest.mark.parametrize("length", [784, 840, 97, 1, 0])
def test_the_sum_of_logs_in_products_is_the_sum_of_the_logs(length):
    # 840 halves: products of 120 terms reach 2^-120 exactly, the lowest they can; 97 is prime: groups of one
    p = torch.sigmoid(torch.randn(3, 5, length).abs() * 4)
    torch.testing.assert_close(sum_of_logs(p, -1), p.log().sum(-1), atol=1e-4, rtol=1e-6)
    torch.testing.assert_close(sum_of_logs(p), p.log().sum(), atol=1e-3, rtol=1e-6)
    halves = torch.full((2, length), 0.5)
    torch.testing.assert_close(sum_of_logs(halves, -1), torch.full((2,), length * math.log(0.5)))
    with pytest.raises(ValueError, match="last dimension"):
        sum_of_logs(p, 0)
