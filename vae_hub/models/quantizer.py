"""Vector quantization (VQ-VAE, van den Oord et al. 2017): each encoder vector snaps to its nearest codebook entry.

The codebook is learned by exponential moving averages of the vectors assigned to each entry (the paper's appendix;
Razavi et al. 2019), not by gradients; the encoder gets the decoder's gradient straight through the snap and a
commitment loss β ‖z_e − sg(z_q)‖² that keeps it near its entries. Entries no vector picks for a while (*dead
codes*) are restarted at vectors of the current batch, so the whole codebook stays in use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .initialization import normal_values


@dataclass(frozen=True)
class Quantized:
    """What ``VectorQuantizer`` gives for a batch of encoder maps (N, D, H, W).

    Attributes:
        z_q: The snapped vectors with the straight-through gradient: z_e + sg(z_q − z_e), (N, D, H, W).
        indices: The chosen entries, (N, H, W), int64.
        commitment: ‖z_e − sg(z_q)‖² summed over each image's vectors, (N,).
    """

    z_q: Tensor
    indices: Tensor
    commitment: Tensor


class VectorQuantizer(nn.Module):
    """A codebook of ``num_codes`` vectors of ``code_dim``, updated by moving averages while training.

    Args:
        num_codes: Codebook entries K.
        code_dim: Their dimension D (the encoder's output channels).
        decay: The moving averages' decay (0.99 in the paper).
        dead_after: An entry whose averaged count of assigned vectors falls below this is restarted.
    """

    def __init__(self, num_codes: int, code_dim: int, decay: float = 0.99, dead_after: float = 0.01) -> None:
        super().__init__()
        self.num_codes, self.code_dim, self.decay, self.dead_after = num_codes, code_dim, decay, dead_after
        codebook = normal_values(code_dim**-0.5, num_codes, code_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("counts", torch.ones(num_codes))  # moving average of the vectors each entry is given
        self.register_buffer("sums", codebook.clone())  # moving average of their sum

    def nearest(self, z_e: Tensor) -> Tensor:
        """The index of the nearest entry to each vector of ``z_e`` (N, D, H, W): (N, H, W)."""
        flat = z_e.detach().float().permute(0, 2, 3, 1).reshape(-1, self.code_dim)
        # ‖z − e‖² = ‖z‖² − 2 z·e + ‖e‖²; ‖z‖² is the same for every entry
        distances = self.codebook.pow(2).sum(1) - 2 * flat @ self.codebook.T
        return distances.argmin(1).reshape(z_e.shape[0], *z_e.shape[2:])

    def lookup(self, indices: Tensor) -> Tensor:
        """The entries at ``indices`` (N, H, W), as maps (N, D, H, W)."""
        return self.codebook[indices].permute(0, 3, 1, 2)

    def forward(self, z_e: Tensor) -> Quantized:
        indices = self.nearest(z_e)
        if self.training:
            self.update(z_e, indices)
        z_q = self.lookup(indices).to(z_e.dtype)
        commitment = (z_e.float() - z_q.float().detach()).pow(2).flatten(1).sum(1)
        return Quantized(z_e + (z_q - z_e).detach(), indices, commitment)

    @torch.no_grad()
    def update(self, z_e: Tensor, indices: Tensor) -> None:
        """Move each entry towards the mean of the vectors assigned to it; restart dead entries."""
        flat = z_e.detach().float().permute(0, 2, 3, 1).reshape(-1, self.code_dim)
        idx = indices.flatten()
        counts = torch.bincount(idx, minlength=self.num_codes).float()
        sums = torch.zeros_like(self.sums).index_add_(0, idx, flat)
        self.counts.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.codebook.copy_(self.sums / self.counts.clamp_min(1e-5)[:, None])
        dead = (self.counts < self.dead_after).nonzero().flatten()
        if dead.numel():  # restart at random vectors of this batch, as if each had just been given one
            picks = flat[torch.randint(flat.shape[0], (dead.numel(),), device=flat.device)]
            self.codebook[dead] = picks
            self.sums[dead] = picks
            self.counts[dead] = 1.0

    def perplexity(self, indices: Tensor) -> float:
        """exp(entropy) of the entries' usage in ``indices``: K when all are used equally, 1 when one is."""
        p = torch.bincount(indices.flatten(), minlength=self.num_codes).float()
        p = p / p.sum()
        return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
