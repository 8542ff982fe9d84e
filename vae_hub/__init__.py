"""vae-hub: Variational Autoencoders with strict, safetensors-only Hugging Face Hub save/load."""

from .base import BaseVAE, from_pretrained
from .errors import CheckpointError, CheckpointNotFoundError
from .losses import ELBOOutput, elbo, gaussian_kl, iwae, kl_warmup, vae_loss_fn
from .metrics import (
    active_units,
    importance_sampled_log_likelihood,
    kl_per_dimension,
    posterior_estimate,
    posterior_mean_variance,
)
from .models import ConvVAE, VariationalAutoencoder

__version__ = "0.1.0"

__all__ = [
    "BaseVAE",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConvVAE",
    "ELBOOutput",
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
