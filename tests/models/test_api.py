"""The public API every model shares, and the errors it gives for bad input."""

import pytest
import torch

from vae_hub import ConvVAE, HierarchicalVAE, VariationalAutoencoder

MODELS = {
    "mlp": lambda: VariationalAutoencoder(784, 32, 4),
    "conv": lambda: ConvVAE(latent_dim=4, base_channels=4, hidden_dim=16),
    "conv-cifar": lambda: ConvVAE((3, 32, 32), latent_dim=6, base_channels=4, hidden_dim=16),
    "conv-residual": lambda: ConvVAE(latent_dim=4, base_channels=4, hidden_dim=16, res_blocks=2),
    "hvae": lambda: HierarchicalVAE(latent_dim=4, latent_channels=2, base_channels=4, hidden_dim=16),
    "hvae-pixel-cifar": lambda: HierarchicalVAE(
        (3, 32, 32), latent_dim=4, latent_channels=2, base_channels=4, hidden_dim=16, pixel_context=2
    ),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return MODELS[request.param]().eval()


def images(model, n=3):
    return torch.rand(n, *model.image_shape)


def test_shapes(model):
    c, h, w = model.image_shape
    assert model.input_dim == c * h * w
    assert model.sample(5).shape == (5, c, h, w)
    x = images(model)
    assert model.reconstruct(x).shape == x.shape
    assert model.reconstruct(x.flatten(1)).shape == (3, c * h * w)
    assert model.interpolate(x, x.flip(0), steps=7).shape == (3, 7, c, h, w)
    assert model.traverse(x, 1, [-2, 0, 2]).shape == (3, 3, c, h, w)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, model.latent_dim)
    recon_x, _, _ = model(x)
    assert recon_x.shape == x.shape


def test_sample_is_reproducible_with_a_generator_and_shrinks_with_temperature(model):
    a = model.sample(4, generator=torch.Generator().manual_seed(7))
    b = model.sample(4, generator=torch.Generator().manual_seed(7))
    c = model.sample(4, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    cold = model.sample(3, temperature=0.0)
    torch.testing.assert_close(cold[0], cold[1])  # all z = 0 (a batched matmul may round rows apart)
    torch.testing.assert_close(cold, model.to_images(model.decode(torch.zeros(3, model.latent_dim))))


def test_reconstruct_decodes_the_posterior_mean(model):
    x = images(model)
    mu, _ = model.encode(x)
    torch.testing.assert_close(model.reconstruct(x), model.to_images(model.decode(mu)))


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolation_starts_and_ends_at_the_endpoints(model, method):
    xa, xb = images(model, 2), images(model, 2)
    path = model.interpolate(xa, xb, steps=5, method=method)
    torch.testing.assert_close(path[:, 0], model.reconstruct(xa), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(path[:, -1], model.reconstruct(xb), atol=1e-5, rtol=1e-4)


def test_slerp_keeps_the_norm_on_a_circle():
    from vae_hub.models.base import lerp, slerp

    a, b = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(slerp(a, b, t).norm(dim=-1), torch.full((1, 5), 2.0))
    assert lerp(a, b, t).norm(dim=-1)[0, 2] < 1.5  # the straight line cuts the corner
    torch.testing.assert_close(slerp(a, a, t), a[:, None].expand(1, 5, 2))  # parallel codes: no NaN


def test_traverse_sets_one_dimension(model):
    z = torch.randn(2, model.latent_dim)
    out = model.traverse(z, 0, [-1.0, 1.0])
    z1 = z.clone()
    z1[:, 0] = 1.0
    torch.testing.assert_close(out[:, 1], model.to_images(model.decode(z1)))


BAD_INPUTS = [
    (lambda s: torch.rand(2, s[0], s[1] + 1, s[2]), ValueError, r"expects images of shape \(B, \d+, \d+, \d+\)"),
    (lambda s: torch.rand(*s), ValueError, "add a batch dimension"),
    (lambda s: torch.rand(2, 5), ValueError, r"or flat inputs of shape \(B, \d+\), got shape \(2, 5\)"),
    (lambda s: torch.rand(0, *s), ValueError, "empty batch"),
    (lambda s: torch.randint(0, 255, (2, *s), dtype=torch.uint8), ValueError, r"floating-point.*uint8.*/ 255"),
    (lambda s: torch.rand(2, *s) * 255, ValueError, r"values in \[0, 1\], got min .* and max 2"),
    (lambda s: torch.rand(2, *s) - 0.5, ValueError, r"values in \[0, 1\], got min -"),
    (lambda s: torch.full((2, *s), float("nan")), ValueError, "NaN"),
    (lambda s: [[0.5] * 4], TypeError, "expects a torch.Tensor"),
]


@pytest.mark.parametrize("make, error, message", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(model, make, error, message):
    x = make(model.image_shape)
    for call in (model.encode, model.reconstruct, model, lambda x: model.interpolate(x, x)):
        with pytest.raises(error, match=message):
            call(x)


@pytest.mark.parametrize(
    "z, message",
    [
        (torch.randn(2, 99), r"latents of shape \(B, \d+\), got \(2, 99\)"),
        (torch.randn(5), r"latents of shape"),
        (torch.ones(2, 4, dtype=torch.long), "floating-point latent"),
        (torch.full((1, 4), float("inf")), "NaN or inf"),
    ],
)
def test_bad_latents_raise_clear_errors(z, message):
    model = MODELS["mlp"]()  # latent_dim 4
    with pytest.raises(ValueError, match=message):
        model.decode(z)


def test_bad_arguments_raise_clear_errors(model):
    x = images(model, 1)
    cases = [
        (lambda: model.sample(0), "n must be a positive integer"),
        (lambda: model.sample(2, temperature=-1), "temperature"),
        (lambda: model.interpolate(x, x, steps=0), "steps must be a positive integer"),
        (lambda: model.interpolate(x, x, method="cubic"), "'lerp' or 'slerp'"),
        (lambda: model.interpolate(x, images(model, 2)), "same number of images"),
        (lambda: model.traverse(x, model.latent_dim, [0.0]), r"dim must be an integer in \[0, \d+\)"),
        (lambda: model.traverse(x, 0, []), "non-empty"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_float64_inputs_are_accepted(model):
    x = images(model).double()
    assert model.reconstruct(x).dtype == torch.float32


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ConvVAE((1, 30, 30)), "divisible by 4"),
        (lambda: ConvVAE((1, 28)), "three positive integers"),
        (lambda: ConvVAE(latent_dim=0), "latent_dim must be a positive integer"),
        (lambda: ConvVAE(res_blocks=-1), "res_blocks must be an integer >= 0"),
        (lambda: VariationalAutoencoder(784, 16, 2, likelihood="poisson"), "likelihood must be one of"),
        (lambda: VariationalAutoencoder(784, 16, 2, likelihood="gaussian", gaussian_std=0), "gaussian_std"),
        (lambda: VariationalAutoencoder(784, 16, 2, image_shape=(1, 20, 20)), "input_dim is 784"),
    ],
)
def test_bad_constructor_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_image_shape_inference():
    assert VariationalAutoencoder(784, 8, 2).image_shape == (1, 28, 28)
    assert VariationalAutoencoder(3072, 8, 2).image_shape == (3, 32, 32)
    assert VariationalAutoencoder(10, 8, 2).image_shape == (1, 1, 10)
