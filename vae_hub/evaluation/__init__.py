"""Measuring a model: the ELBO and its parts, the importance-sampled NLL, active units, latent maps and pictures."""

from .summary import evaluate, format_table

__all__ = ["evaluate", "format_table"]
