"""A convolutional VAE, with optional residual blocks at each resolution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

from ..hub.config_rules import Int, Rule
from .base import MAX_SIDE, MAX_WIDTH, BaseVAE, check_positive_int
from .layers import Conv2d, ConvTranspose2d


class ResidualBlock(nn.Module):
    """x + f(x) with f = ReLU, 3x3 convolution, ReLU, 1x1 convolution: more depth at the same resolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), Conv2d(channels, channels, 3, padding=1), nn.ReLU(), Conv2d(channels, channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def conv_widths(
    model: BaseVAE, base_channels: int, num_downsamples: int, res_blocks: int
) -> tuple[list[int], tuple[int, int, int]]:
    """Check a convolutional model's shape settings; the channels after each stride-2 convolution (doubling from
    ``base_channels``) and the (C, H, W) of the features after the last."""
    check_positive_int("base_channels", base_channels)
    check_positive_int("num_downsamples", num_downsamples)
    if isinstance(res_blocks, bool) or not isinstance(res_blocks, int) or res_blocks < 0:
        raise ValueError(f"res_blocks must be an integer >= 0, got {res_blocks!r}")
    _, h, w = model.image_shape
    factor = 2**num_downsamples
    if h % factor or w % factor:
        raise ValueError(
            f"{type(model).__name__} with num_downsamples={num_downsamples} needs H and W divisible by {factor}, "
            f"got image_shape {model.image_shape}"
        )
    widths = [base_channels * 2**i for i in range(num_downsamples)]
    return widths, (widths[-1], h // factor, w // factor)


class ConvVAE(BaseVAE):
    """A convolutional VAE for (C, H, W) images, e.g. 1x28x28 (the MNIST family) or 3x32x32 (CIFAR-10).

    The encoder halves the resolution ``num_downsamples`` times with stride-2 4x4 convolutions, doubling the
    channels from ``base_channels``; a ``hidden_dim`` layer feeds the ``fc_mu`` / ``fc_logvar`` heads. The decoder
    mirrors it with transposed convolutions and ends in a sigmoid.

    Args:
        image_shape: The images' (C, H, W); H and W must be divisible by 2 ** ``num_downsamples``.
        latent_dim: Dimensions of z.
        base_channels: Channels of the first convolution.
        hidden_dim: Width of the layer before the heads (and after z in the decoder).
        num_downsamples: Stride-2 convolutions, >= 1.
        likelihood: The decoder's p(x|z): ``"bernoulli"`` (binary cross-entropy, for grey levels) or
            ``"gaussian"``.
        gaussian_std: The Gaussian decoder's standard deviation, > 0 (pixels are in [0, 1]).
        learn_std: Learn that standard deviation (one scale, as in the σ-VAE).
        num_classes: > 0 makes a conditional VAE (Sohn et al., 2015) on that many classes; every method then takes
            ``labels=``.
        class_names: The classes' names, ``num_classes`` of them (default ``"0"``, ``"1"``, ...).
        deterministic: A plain autoencoder instead of a VAE: z = the mean head, no sampling, no KL term.
        prior: p(z): ``"standard"`` (N(0, I)) or ``"vamp"``, the VampPrior (Tomczak & Welling, 2018): a mixture of
            the posteriors of ``pseudo_inputs`` learned images, which fits the codes better than N(0, I).
        pseudo_inputs: The VampPrior's number of components K.
        res_blocks: Residual blocks after each downsampling and before each upsampling, in [0, 16]: a deeper
            model at the same widths; 0 is the plain ConvVAE.
    """

    config_rules: ClassVar[dict[str, Rule]] = BaseVAE.config_rules | {
        "base_channels": Int(1, 2**16),
        "hidden_dim": Int(1, MAX_WIDTH),
        "num_downsamples": Int(1, MAX_SIDE.bit_length() - 1),
        "res_blocks": Int(0, 16),
    }

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 16,
        base_channels: int = 32,
        hidden_dim: int = 256,
        num_downsamples: int = 2,
        likelihood: str = "bernoulli",
        gaussian_std: float = 0.1,
        learn_std: bool = False,
        res_blocks: int = 0,
        num_classes: int = 0,
        class_names: Sequence[str] | None = None,
        deterministic: bool = False,
        prior: str = "standard",
        pseudo_inputs: int = 500,
    ) -> None:
        super().__init__()
        self._setup(
            image_shape, latent_dim, likelihood, gaussian_std, learn_std, num_classes, class_names, deterministic,
            prior, pseudo_inputs,
        )  # fmt: skip
        k = self.num_classes
        check_positive_int("hidden_dim", hidden_dim)
        widths, self.feature_shape = conv_widths(self, base_channels, num_downsamples, res_blocks)
        c = self.image_shape[0]
        features = math.prod(self.feature_shape)

        encoder: list[nn.Module] = []
        for c_in, c_out in zip([c, *widths[:-1]], widths, strict=False):
            encoder += [Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            encoder += [ResidualBlock(c_out) for _ in range(res_blocks)]
        self.encoder_backbone = nn.Sequential(*encoder, nn.Flatten(), nn.Linear(features, hidden_dim), nn.ReLU())
        self.fc_mu = nn.Linear(hidden_dim + k, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim + k, latent_dim)

        decoder: list[nn.Module] = [
            nn.Linear(latent_dim + k, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, features),
            nn.ReLU(),
            nn.Unflatten(1, self.feature_shape),
        ]
        rev = widths[::-1]
        for c_in, c_out in zip(rev, [*rev[1:], c], strict=False):
            decoder += [ResidualBlock(c_in) for _ in range(res_blocks)]
            decoder += [ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        decoder[-1] = nn.Sigmoid()  # the last layer outputs pixel means in [0, 1]
        self.decoder = nn.Sequential(*decoder)
