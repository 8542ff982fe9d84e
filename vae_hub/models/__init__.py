"""The models: a Gaussian encoder, a decoder and the objectives that train them.

``MODEL_TYPES`` maps each ``vae-hub train --model`` name to its class; every class is also loadable by
``from_pretrained`` under the class name its ``config.json`` records.
"""

from .base import BaseVAE, ForwardOutput
from .conv import ConvVAE, ResidualBlock
from .hierarchical import HierarchicalVAE
from .loading import from_pretrained
from .mlp import VariationalAutoencoder
from .posterior import DiagonalGaussian
from .vqvae import VQVAE

MODEL_TYPES: dict[str, type[BaseVAE]] = {"mlp": VariationalAutoencoder, "conv": ConvVAE, "hvae": HierarchicalVAE}

__all__ = [
    "MODEL_TYPES",
    "BaseVAE",
    "ConvVAE",
    "DiagonalGaussian",
    "ForwardOutput",
    "HierarchicalVAE",
    "ResidualBlock",
    "VQVAE",
    "VariationalAutoencoder",
    "from_pretrained",
]
