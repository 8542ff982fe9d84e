"""The hierarchical VAE: its lower layers' terms in the ELBO and the NLL, the bound below the likelihood, save/load."""

import math

import pytest
import torch

from vae_hub import HierarchicalVAE, elbo, from_pretrained, importance_sampled_log_likelihood
from vae_hub.models.objectives import iwae
from vae_hub.models.posterior import gaussian_kl_between


def tiny(**kwargs) -> HierarchicalVAE:
    return HierarchicalVAE(**{"latent_dim": 4, "latent_channels": 2, "base_channels": 4, "hidden_dim": 16} | kwargs)


def with_random_heads(model: HierarchicalVAE) -> HierarchicalVAE:
    """The zero-initialised prior and posterior heads given random weights: q differs from p in each lower layer."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for layer in model.top_down:
            for head in (layer.prior, layer.posterior[-1]):
                head.weight.copy_(0.3 * torch.randn(head.weight.shape, generator=g))
                head.bias.copy_(0.1 * torch.randn(head.bias.shape, generator=g))
    return model.eval()


def fit(model: HierarchicalVAE, data: torch.Tensor, steps: int, lr: float = 3e-3) -> list[float]:
    """Train on ``data`` for ``steps`` Adam steps; the negative ELBO of each step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        out = elbo(model, data)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.total.mean().item())
    return losses


def test_lower_maps_are_at_each_resolution_and_their_kl_joins_the_top_one(binary_batch):
    model = with_random_heads(tiny())
    assert model.lower_shapes == [(2, 7, 7), (2, 14, 14)]
    out = elbo(model, binary_batch, generator=torch.Generator().manual_seed(0))
    assert out.kl_per_dim.shape == (8, 4) and out.kl_lower.shape == (8, 4)  # 2 layers x 2 channels
    assert (out.kl_lower > 0).all()
    torch.testing.assert_close(out.kl, out.kl_per_dim.sum(-1) + out.kl_lower.sum(-1))
    torch.testing.assert_close(out.total, out.recon + out.kl)


def test_the_lower_layers_kl_is_the_expectation_of_their_log_ratio():
    model = with_random_heads(tiny())
    x = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        out = model(x, samples=20_000, generator=torch.Generator().manual_seed(1))
    kl = out.lower_kl.sum(-1).flatten()  # closed form, at each draw of the upper layers
    ratio = out.lower_log_ratio.flatten()  # log p - log q at each draw
    error = (ratio + kl).std() / math.sqrt(ratio.numel())
    assert abs(float(ratio.mean() + kl.mean())) < 4 * float(error), (ratio.mean(), kl.mean())


def test_gaussian_kl_between_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    qm, qlv, pm, plv = (torch.randn(3, generator=g) for _ in range(4))
    z = qm + torch.exp(0.5 * qlv) * torch.randn(400_000, 3, generator=g)
    log_q = -0.5 * ((z - qm) ** 2 / qlv.exp() + qlv)
    log_p = -0.5 * ((z - pm) ** 2 / plv.exp() + plv)
    torch.testing.assert_close((log_q - log_p).mean(0), gaussian_kl_between(qm, qlv, pm, plv), atol=0.03, rtol=0.02)


def test_reconstruct_takes_every_layer_at_its_posterior_mean_and_decode_the_lower_ones_at_the_prior_mean():
    model = with_random_heads(tiny())
    x = torch.rand(3, 1, 28, 28)
    q = model.encode(x)
    full = torch.sigmoid(model._decode_posterior(q.mode(), q, draw=False).logits)
    torch.testing.assert_close(model.reconstruct(x), full)
    assert not torch.allclose(model.reconstruct(x), model.decode(q.mode()))  # the lower posteriors carry x
    torch.testing.assert_close(model.sample(2, temperature=0.0), model.decode(torch.zeros(2, 4)))


@pytest.mark.parametrize("pixel_context", [0, 2])
def test_save_and_load_are_bit_identical(tmp_path, pixel_context):
    model = with_random_heads(tiny(pixel_context=pixel_context))
    model.save_pretrained(tmp_path / "hvae")
    loaded = from_pretrained(tmp_path / "hvae")
    assert type(loaded) is HierarchicalVAE and loaded.lower_shapes == model.lower_shapes
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(model.reconstruct(x), loaded.reconstruct(x))
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(model.sample(3, generator=g()), loaded.sample(3, generator=g()))


@pytest.mark.parametrize("pixel_context", [0, 2])
def test_a_tiny_hierarchical_vae_overfits_a_small_batch(binary_batch, pixel_context):
    torch.manual_seed(0)
    model = tiny(latent_channels=4, base_channels=8, hidden_dim=64, pixel_context=pixel_context)
    losses = fit(model, binary_batch, 200)
    # random binary pixels cost 784 * log 2 = 543 nats without memorisation
    assert losses[0] > 540 and losses[-1] < 0.5 * losses[0], losses[::40]


@pytest.mark.parametrize("pixel_context", [0, 1])
def test_the_nll_bound_is_below_the_likelihood_and_tightens_with_k(pixel_context):
    """On 4x4 images with a 1-D top code and one 1x2x2 map, log p(x) = log E_p(z)[p(x|z)] is estimated directly
    from 400,000 prior draws; the importance-weighted bounds must rise with k and stay below it. With an
    autoregressive decoder, p(x|z) is the product of each pixel's term given the pixels before it."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    data = (protos[torch.randint(0, 3, (96,), generator=g)] + (torch.rand(96, 1, 4, 4, generator=g) < 0.1)) % 2
    model = HierarchicalVAE((1, 4, 4), latent_dim=1, latent_channels=1, base_channels=8, hidden_dim=32,
                            num_downsamples=1, res_blocks=0, pixel_context=pixel_context)  # fmt: skip
    fit(model, data, 300, lr=1e-2)
    model.eval()
    x = protos
    with torch.no_grad():
        n = 400_000
        z = torch.randn(n, 1, generator=g)
        state = model._run_top_down(z, None, draw=True, generator=g).logits
        log_px_z = torch.stack(
            [
                -model.reconstruction_nll(
                    (model.pixel_head(state, image.expand(n, -1, -1, -1)) if pixel_context else state).flatten(1),
                    image.flatten()[None],
                )
                for image in x
            ],
            dim=1,
        )  # (n, 3)
        log_px = torch.logsumexp(log_px_z, 0) - math.log(n)
        bounds = {
            k: iwae(model, x.repeat(2000, 1, 1, 1), k, generator=g).iw_bound.reshape(2000, 3).mean(0) for k in (1, 10)
        }
        nll_k = importance_sampled_log_likelihood(model, x, k=20_000, generator=g)
    assert (bounds[1] < bounds[10]).all(), bounds
    assert (bounds[10] < log_px + 0.02).all(), (bounds, log_px)
    torch.testing.assert_close(nll_k, log_px, atol=0.05, rtol=0)  # the k = 20,000 estimate reaches it
    assert (log_px - bounds[1]).mean() > 0.03, "a fitted posterior leaves a gap that more samples close"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 3}, "neither conditional nor deterministic"),
        ({"image_shape": (1, 30, 30)}, "needs H and W divisible by 4"),
        ({"latent_channels": 0}, "latent_channels must be a positive integer"),
        ({"res_blocks": -1}, "res_blocks must be an integer >= 0"),
        ({"pixel_context": -1}, "pixel_context must be an integer >= 0"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(**kwargs)


def with_random_pixel_head(model: HierarchicalVAE) -> HierarchicalVAE:
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in model.pixel_head.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return with_random_heads(model)


@pytest.mark.parametrize("channels", [1, 3])
def test_the_autoregressive_decoder_reads_only_the_pixels_before_each_one(channels):
    """Changing pixel (i, j) of the image moves no logit at or before it in raster order, and some after it."""
    model = with_random_pixel_head(tiny(image_shape=(channels, 8, 8), pixel_context=2))
    state = torch.randn(1, 4, 8, 8)
    x = torch.rand(1, channels, 8, 8)
    with torch.no_grad():
        base = model.pixel_head(state, x)
        for i, j in [(0, 0), (3, 5), (7, 7)]:
            moved = x.clone()
            moved[:, :, i, j] = 1 - moved[:, :, i, j]
            changed = (model.pixel_head(state, moved) - base).abs().amax(1)[0] > 0  # (8, 8)
            order = torch.arange(64).reshape(8, 8)
            assert not changed[order <= 8 * i + j].any(), (i, j)
            assert changed[order > 8 * i + j].any() or (i, j) == (7, 7)


def test_decoding_pixel_by_pixel_gives_what_the_likelihood_scores():
    """The pixels decoded in turn, fed back as the image, give the same logits at once: the two paths agree."""
    model = with_random_pixel_head(tiny(image_shape=(3, 8, 8), pixel_context=2))
    state = torch.randn(5, 4, 8, 8)
    with torch.no_grad():
        decoded = model.pixel_head.generate(state)
        torch.testing.assert_close(model.pixel_head(state, torch.sigmoid(decoded)), decoded)


def test_an_autoregressive_reconstruction_is_decoded_not_copied_from_the_image():
    model = with_random_pixel_head(tiny(pixel_context=2))
    x = torch.rand(3, 1, 28, 28)
    q = model.encode(x)
    read = model._decode_posterior(q.mode(), q, draw=True)  # the likelihood's logits read x's own pixels
    assert read.state is not None
    decoded = model._decode_posterior(q.mode(), q, draw=False)  # the reconstruction's do not
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(decoded.logits))
    state = model._run_top_down(q.mode(), q.features, draw=False).logits
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(model.pixel_head.generate(state)))
    assert not torch.allclose(model.reconstruct(x), torch.sigmoid(model.pixel_head(state, x)))
    with torch.no_grad():
        torch.testing.assert_close(model.decoded_means(read), torch.sigmoid(model.pixel_head.generate(read.state)))


def test_a_true_sample_from_an_autoregressive_decoder_draws_each_pixel_reading_those_drawn_before():
    model = with_random_pixel_head(tiny(pixel_context=2))
    x = torch.rand(2, 1, 28, 28)
    g = lambda: torch.Generator().manual_seed(6)  # noqa: E731
    drawn = model.observe_reconstruction(x, generator=g())
    assert drawn.shape == x.shape and set(drawn.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(drawn, model.observe_reconstruction(x, generator=g()))
    q = model.encode(x)
    with torch.no_grad():
        state = model._run_top_down(q.mode(), q.features, draw=False).logits
        # the logits of the draw, read back at once from the drawn pixels, are those the steps used
        logits, pixels = model.pixel_head.fill(state, lambda mean: model.observe(mean, g()))
    assert set(pixels.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(model.pixel_head(state, pixels), logits)
    independent = tiny()
    torch.testing.assert_close(  # without the head: the reconstruction's pixels drawn independently
        independent.observe_reconstruction(x, generator=g()), independent.observe(independent.reconstruct(x), g())
    )
