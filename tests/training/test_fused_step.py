"""The hand-fused training step of the seed's MLP against autograd, and which precision a run picks by default."""

from __future__ import annotations

import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file

from vae_hub.models.conv import ConvVAE
from vae_hub.models.mlp import VariationalAutoencoder
from vae_hub.models.objectives import elbo
from vae_hub.precision import cpu_has_native_bf16, resolve_mixed_precision
from vae_hub.training.config import TrainConfig
from vae_hub.training.fused_step import FusedMLPStep, fused_step_problem
from vae_hub.training.trainer import Trainer


def autograd_step(model, x, beta, seed, bf16=False):
    """Sums and gradients through autograd, with the same draws of eps as the fused step (seeded alike)."""
    model.zero_grad()
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = elbo(model, x, beta=beta)
    out.loss.backward()
    sums = torch.stack([out.loss, out.total_sum, out.recon_sum, out.kl_sum]).detach().float()
    return sums, {name: p.grad.clone() for name, p in model.named_parameters()}


def fused_step(model, x, beta, seed, dtype=torch.float32):
    torch.manual_seed(seed)
    sums = FusedMLPStep(model, dtype)(x, beta)
    return sums, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("beta", [1.0, 0.25, 0.0])
@pytest.mark.parametrize("shape", [(784, 400, 20, 32), (12, 9, 3, 7)])
def test_the_fused_step_gives_autograds_loss_and_gradients(shape, beta):
    d, h, latent, batch = shape
    torch.manual_seed(0)
    model = VariationalAutoencoder(d, h, latent)
    x = torch.rand(batch, d)
    x[: batch // 2] = (x[: batch // 2] > 0.5).float()  # binary and grey-level pixels
    want_sums, want = autograd_step(model, x, beta, seed=3)
    got_sums, got = fused_step(model, x, beta, seed=3)
    torch.testing.assert_close(got_sums, want_sums, rtol=1e-5, atol=1e-3)
    assert set(got) == set(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5, msg=name)


def test_the_bf16_fused_step_is_as_close_to_fp32_as_autocast_is():
    torch.manual_seed(0)
    model = VariationalAutoencoder(784, 400, 20)
    x = torch.rand(64, 784)
    _, exact = autograd_step(model, x, 1.0, seed=1)
    _, autocast = autograd_step(model, x, 1.0, seed=1, bf16=True)
    sums, fused = fused_step(model, x, 1.0, seed=1, dtype=torch.bfloat16)
    for name, g in exact.items():
        err_fused = ((fused[name] - g).norm() / g.norm()).item()
        err_autocast = ((autocast[name] - g).norm() / g.norm()).item()
        assert err_fused < 0.05, (name, err_fused)
        assert err_fused < 2 * err_autocast + 1e-3, (name, err_fused, err_autocast)
    exact_sums, _ = autograd_step(model, x, 1.0, seed=1)
    torch.testing.assert_close(sums, exact_sums, rtol=1e-3, atol=0.5)


def test_the_fused_step_says_what_it_does_not_cover():
    mlp = VariationalAutoencoder(16, 8, 2)
    ok = dict(iw_samples=1, free_bits=0.0, processes=1)
    assert fused_step_problem(mlp, **ok) is None
    assert "--model mlp" in fused_step_problem(ConvVAE((1, 8, 8), 2, 4, 8), **ok)
    for other in (
        VariationalAutoencoder(16, 8, 2, likelihood="gaussian"),
        VariationalAutoencoder(16, 8, 2, num_classes=3),
        VariationalAutoencoder(16, 8, 2, deterministic=True),
    ):
        assert "Bernoulli VAE only" in fused_step_problem(other, **ok)
    assert "ELBO" in fused_step_problem(mlp, **(ok | {"iw_samples": 5}))
    assert "ELBO" in fused_step_problem(mlp, **(ok | {"free_bits": 0.5}))
    assert "all-reduce" in fused_step_problem(mlp, **(ok | {"processes": 2}))


pytestmark = pytest.mark.usefixtures("fresh_accelerator_state")  # each Trainer may ask for another precision


def trainer(config: TrainConfig) -> Trainer:
    AcceleratorState._reset_state(reset_partial_state=True)
    return Trainer(config)


def train_config(tmp_path, name, **kwargs) -> TrainConfig:
    return TrainConfig(
        dataset="mnist", data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / name), epochs=2, batch_size=32,
        hidden_dim=32, latent_dim=4, eval_k=0, progress=False, download=False, cache_dir=str(tmp_path / "cache"),
        **kwargs,
    )  # fmt: skip


def test_training_with_the_fused_step_ends_where_autograd_does(tmp_path, mnist_dir):
    """fp32: the same draws of eps, the same maths: the same weights after two epochs, up to rounding."""
    fused = trainer(train_config(tmp_path, "fused", mixed_precision="no"))  # seeds the global RNG: run it at once
    assert isinstance(fused.fused_step, FusedMLPStep) and fused.fused_step.dtype == torch.float32
    a = fused.run()
    plain = trainer(train_config(tmp_path, "autograd", mixed_precision="no", fused_step=False))
    assert plain.fused_step is None
    b = plain.run()
    assert abs(a["test"]["loss"] - b["test"]["loss"]) < 0.05
    weights_a, weights_b = (
        load_file(tmp_path / "fused" / "model.safetensors"),
        load_file(tmp_path / "autograd" / "model.safetensors"),
    )
    for name in weights_b:
        torch.testing.assert_close(weights_a[name], weights_b[name], rtol=1e-3, atol=1e-4, msg=name)
    assert trainer(train_config(tmp_path, "conv", model="conv", base_channels=4)).fused_step is None
    assert trainer(train_config(tmp_path, "fp16", mixed_precision="fp16")).fused_step is None


def test_auto_precision_is_bf16_only_where_it_is_native(tmp_path, mnist_dir):
    assert cpu_has_native_bf16("flags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n", env={})
    assert cpu_has_native_bf16("flags\t\t: fpu amx_bf16 amx_tile\n", env={})
    assert not cpu_has_native_bf16("flags\t\t: fpu sse avx2 avx512f avx512bw\n", env={})
    assert not cpu_has_native_bf16("", env={})
    assert resolve_mixed_precision("auto", cpu=True) == ("bf16" if cpu_has_native_bf16() else "no")
    for explicit in ("no", "bf16", "fp16"):
        assert resolve_mixed_precision(explicit) == explicit
    auto = trainer(train_config(tmp_path, "auto", cpu=True))
    assert auto.config.mixed_precision == ("bf16" if cpu_has_native_bf16() else "no")
    assert auto.fused_step.dtype == (torch.bfloat16 if auto.config.mixed_precision == "bf16" else torch.float32)


def test_uint8_pixels_are_scaled_as_to_unit_scales_them():
    """The trainer hands the fused step uint8 batches; the result is the same as for the [0, 1] floats."""
    from vae_hub.data.image_data import to_unit

    torch.manual_seed(0)
    model = VariationalAutoencoder(784, 32, 4)
    pixels = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    a_sums, a = fused_step(model, pixels, 1.0, seed=2)
    b_sums, b = fused_step(model, to_unit(pixels), 1.0, seed=2)
    assert torch.equal(a_sums, b_sums) and all(torch.equal(a[k], b[k]) for k in a)
