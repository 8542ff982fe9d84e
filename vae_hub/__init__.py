"""vae-hub: Variational Autoencoders with strict, safetensors-only Hugging Face Hub save/load.

The sub-packages, by concern: ``models`` (the VAEs, their posterior and objectives), ``hub`` (save, load, publish),
``data`` (where images come from), ``training``, ``evaluation``, ``space`` (the Gradio app) and ``cli``.
"""

from .errors import CheckpointError, CheckpointNotFoundError, VaeHubError
from .evaluation.metrics import (
    active_units,
    importance_sampled_log_likelihood,
    kl_per_dimension,
    posterior_estimate,
    posterior_mean_variance,
)
from .models.base import BaseVAE, ForwardOutput
from .models.conv import ConvVAE
from .models.hierarchical import HierarchicalVAE
from .models.loading import from_pretrained
from .models.mlp import VariationalAutoencoder
from .models.objectives import ELBOOutput, elbo, iwae, kl_warmup, vae_loss_fn
from .models.posterior import DiagonalGaussian, gaussian_kl
from .models.vqvae import VQVAE

__version__ = "0.2.0"

__all__ = [
    "BaseVAE",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConvVAE",
    "HierarchicalVAE",
    "DiagonalGaussian",
    "ELBOOutput",
    "ForwardOutput",
    "VQVAE",
    "VaeHubError",
    "VariationalAutoencoder",
    "active_units",
    "elbo",
    "from_pretrained",
    "gaussian_kl",
    "importance_sampled_log_likelihood",
    "iwae",
    "kl_per_dimension",
    "kl_warmup",
    "posterior_estimate",
    "posterior_mean_variance",
    "vae_loss_fn",
]
