"""The convolutions that add their bias after the convolution while training: the same function as torch's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vae_hub.models.conv import ConvVAE
from vae_hub.models.layers import Conv2d, ConvTranspose2d

PAIRS = [
    (nn.Conv2d, Conv2d, dict(in_channels=3, out_channels=5, kernel_size=4, stride=2, padding=1), (2, 3, 8, 8)),
    (nn.Conv2d, Conv2d, dict(in_channels=3, out_channels=3, kernel_size=3, padding=1), (2, 3, 6, 6)),
    (nn.ConvTranspose2d, ConvTranspose2d, dict(in_channels=4, out_channels=2, kernel_size=4, stride=2, padding=1),
     (2, 4, 5, 5)),
]  # fmt: skip


def twins(torch_cls, ours_cls, kwargs):
    torch.manual_seed(0)
    reference = torch_cls(**kwargs)
    ours = ours_cls(**kwargs)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


@pytest.mark.parametrize("torch_cls, ours_cls, kwargs, shape", PAIRS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_outputs_and_gradients_are_torchs(torch_cls, ours_cls, kwargs, shape, channels_last):
    reference, ours = twins(torch_cls, ours_cls, kwargs)
    assert list(ours.state_dict()) == list(reference.state_dict()) == ["weight", "bias"]
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        reference, ours = (m.to(memory_format=torch.channels_last) for m in (reference, ours))
    y_ref, y = reference(x), ours(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y_ref)
    y_ref.backward(g)
    y.backward(g)
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(reference, name).grad, rtol=1e-5, atol=1e-5)


def test_an_asked_output_size_is_kept():
    reference, ours = twins(nn.ConvTranspose2d, ConvTranspose2d, dict(in_channels=2, out_channels=2, kernel_size=3,
                                                                       stride=2, padding=1))  # fmt: skip
    x = torch.randn(1, 2, 4, 4)
    for size in ([7, 7], [8, 8]):
        torch.testing.assert_close(ours(x, output_size=size), reference(x, output_size=size))
        assert ours(x, output_size=size).shape[-2:] == tuple(size)


def test_bf16_autocast_gives_a_bf16_output_close_to_torchs():
    reference, ours = twins(nn.Conv2d, Conv2d, dict(in_channels=8, out_channels=16, kernel_size=4, stride=2, padding=1))
    x = torch.randn(4, 8, 12, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ref, y = reference(x), ours(x)
    assert y.dtype == y_ref.dtype == torch.bfloat16  # the bias is added in the convolution's precision
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=2e-2, atol=2e-2)


def test_without_a_gradient_the_bias_stays_inside_the_convolution():
    reference, ours = twins(nn.Conv2d, Conv2d, dict(in_channels=3, out_channels=4, kernel_size=3))
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        assert torch.equal(ours(x), reference(x))  # the same call, bit for bit


def test_the_conv_vae_is_built_with_them():
    model = ConvVAE(res_blocks=1)
    kinds = {type(m) for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)}
    assert kinds == {Conv2d, ConvTranspose2d}


ONE_CHANNEL_CASES = [  # a transposed convolution to one channel: its settings, input shape and output size
    (dict(kernel_size=4, stride=2, padding=1), (3, 32, 7, 7), None),  # the decoders' last layer
    (dict(kernel_size=3, stride=2, padding=1, bias=False), (2, 4, 5, 5), [10, 10]),  # an output padding
    (dict(kernel_size=(3, 2), stride=(1, 3), padding=(0, 1), dilation=(2, 1)), (2, 3, 4, 6), None),
]


@pytest.mark.parametrize("kwargs, shape, output_size", ONE_CHANNEL_CASES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_one_channel_transposed_convolution_without_a_gradient_is_torchs(kwargs, shape, output_size, channels_last):
    reference, ours = twins(nn.ConvTranspose2d, ConvTranspose2d, dict(in_channels=shape[1], out_channels=1) | kwargs)
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y_ref, y = reference(x, output_size=output_size), ours(x, output_size=output_size)
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y_ref, y = reference(x, output_size=output_size), ours(x, output_size=output_size)
    assert y.dtype == y_ref.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), y_ref.float(), rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("kwargs, shape, output_size", ONE_CHANNEL_CASES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_one_channel_transposed_convolution_in_fp32_training_has_torchs_gradients(
    kwargs, shape, output_size, channels_last
):
    reference, ours = twins(nn.ConvTranspose2d, ConvTranspose2d, dict(in_channels=shape[1], out_channels=1) | kwargs)
    if channels_last:
        reference, ours = (m.to(memory_format=torch.channels_last) for m in (reference, ours))
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grads = []
    for layer in (reference, ours):
        xi = x.clone().requires_grad_()
        y = layer(xi, output_size=output_size)
        target = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
        y.backward(target)
        grads.append((y.detach(), xi.grad, *(p.grad for p in layer.parameters())))
    for theirs, mine in zip(*grads, strict=True):
        assert mine.shape == theirs.shape
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4)
