"""An autoregressive prior over a grid of discrete codes: a small causal transformer, p(c) = Π_i p(c_i | c_<i).

The grid is read in raster order (row by row). A VQ-VAE's codes are not independent, so a uniform or a factorised
prior samples noise; this prior is what lets the model draw new images (the VQ-VAE paper fits a PixelCNN; a causal
transformer has no blind spot and is as small for a 7x7 grid).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .initialization import normal_values


class CodePrior(nn.Module):
    """p(c) over (H, W) grids of indices into a codebook of ``num_codes`` entries.

    Args:
        num_codes: Codebook entries K.
        grid: The code grid's (H, W).
        width: The transformer's width.
        layers: Its layers.
        heads: Its attention heads (``width`` must be divisible by them).
    """

    def __init__(
        self, num_codes: int, grid: tuple[int, int], width: int = 128, layers: int = 3, heads: int = 4
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"the code prior's width ({width}) must be divisible by its heads ({heads})")
        self.num_codes, self.grid = num_codes, tuple(grid)
        length = grid[0] * grid[1]
        # the extra entry is the start token; nn.Embedding's own N(0, 1) init, drawn where meta needs no arithmetic
        self.embed = nn.Embedding(num_codes + 1, width, _weight=normal_values(1.0, num_codes + 1, width))
        self.position = nn.Parameter(normal_values(0.02, length, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)

    def logits(self, codes: Tensor) -> Tensor:
        """The logits of p(c_i | c_<i) at every position: (B, H·W, K) for codes (B, H, W) or (B, H·W)."""
        flat = codes.flatten(1)
        start = torch.full_like(flat[:, :1], self.num_codes)
        tokens = torch.cat([start, flat[:, :-1]], dim=1)  # position i sees the codes before it
        n = tokens.shape[1]
        h = self.embed(tokens) + self.position[:n]
        # made here, not kept as a buffer: a model loaded onto the meta device then has nothing unsaved
        causal = nn.Transformer.generate_square_subsequent_mask(n, device=h.device, dtype=h.dtype)
        h = self.blocks(h, mask=causal, is_causal=True)
        return self.head(self.norm(h))

    def log_prob(self, codes: Tensor) -> Tensor:
        """log p(c) of each grid (B, H, W), in nats: (B,)."""
        logits = self.logits(codes).float()
        return -nn.functional.cross_entropy(logits.transpose(1, 2), codes.flatten(1), reduction="none").sum(1)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """``n`` grids drawn one code at a time, each from p(c_i | c_<i) with its logits divided by ``temperature``
        (0: the most likely code each time). Returns (n, H, W) indices."""
        length = self.grid[0] * self.grid[1]
        device = self.position.device
        codes = torch.zeros(n, length, dtype=torch.long, device=device)
        for i in range(length):
            logits = self.logits(codes[:, : i + 1])[:, i].float()  # position i only looks at codes before it
            if temperature == 0:
                codes[:, i] = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                codes[:, i] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return codes.reshape(n, *self.grid)

    def bits_per_grid(self, codes: Tensor) -> Tensor:
        """−log₂ p(c) of each grid: what describing its codes costs under this prior, (B,)."""
        return -self.log_prob(codes) / math.log(2)
