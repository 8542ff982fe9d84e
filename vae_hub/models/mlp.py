"""The classic MLP VAE (Kingma & Welling, 2014), with the layer names of the PyTorch example."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from torch import nn

from ..hub.config_rules import ImageShape, Int, Rule
from .base import MAX_CHANNELS, MAX_SIDE, MAX_WIDTH, BaseVAE, check_positive_int


def infer_image_shape(input_dim: int) -> tuple[int, int, int]:
    """(1, s, s) when ``input_dim`` is a square, (3, s, s) when a third of it is, else (1, 1, input_dim)."""
    for channels in (1, 3):
        side = math.isqrt(input_dim // channels)
        if input_dim % channels == 0 and side * side * channels == input_dim:
            return (channels, side, side)
    return (1, 1, input_dim)


class VariationalAutoencoder(BaseVAE):
    """The classic MLP VAE (Kingma & Welling): an MLP encoder to ``fc_mu`` / ``fc_logvar`` heads, an MLP decoder
    ending in a sigmoid.

    ``VariationalAutoencoder(784, 400, 20)`` is the classic MNIST model. With ``num_classes`` > 0 it is a
    conditional VAE: the one-hot label joins the features before the heads and z before the decoder.

    Args:
        input_dim: Values in one flattened image, e.g. 784 for 1x28x28.
        hidden_dim: Width of the encoder's and the decoder's hidden layer.
        latent_dim: Dimensions of z.
        image_shape: The images' (C, H, W), C·H·W = ``input_dim`` (default: a square single-channel image when
            ``input_dim`` is a square, 784 -> 1x28x28).
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
    """

    flat_input = True
    config_rules: ClassVar[dict[str, Rule]] = BaseVAE.config_rules | {
        "input_dim": Int(1, MAX_CHANNELS * MAX_SIDE**2),
        "hidden_dim": Int(1, MAX_WIDTH),
        "image_shape": ImageShape(MAX_CHANNELS, MAX_SIDE, optional=True),
    }

    def __init__(
        self,
        input_dim: int = 784,
        hidden_dim: int = 400,
        latent_dim: int = 20,
        image_shape: Sequence[int] | None = None,
        likelihood: str = "bernoulli",
        gaussian_std: float = 0.1,
        learn_std: bool = False,
        num_classes: int = 0,
        class_names: Sequence[str] | None = None,
        deterministic: bool = False,
        prior: str = "standard",
        pseudo_inputs: int = 500,
    ) -> None:
        super().__init__()
        check_positive_int("input_dim", input_dim)
        check_positive_int("hidden_dim", hidden_dim)
        shape = infer_image_shape(input_dim) if image_shape is None else tuple(image_shape)
        if math.prod(shape) != input_dim:
            raise ValueError(f"image_shape {shape} holds {math.prod(shape)} values but input_dim is {input_dim}")
        self._setup(
            shape,
            latent_dim,
            likelihood,
            gaussian_std,
            learn_std,
            num_classes,
            class_names,
            deterministic,
            prior,
            pseudo_inputs,
        )
        k = self.num_classes  # a conditional model appends the one-hot label to the heads' and decoder's inputs
        # Shared encoder backbone
        self.encoder_backbone = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU())
        # Encoder heads for mean and log-variance
        self.fc_mu = nn.Linear(hidden_dim + k, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim + k, latent_dim)
        # Decoder
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + k, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, input_dim),
            nn.Sigmoid(),  # Restricts reconstruction values to [0, 1]
        )
