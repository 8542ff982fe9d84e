"""Convolutions whose bias, while training, is added after the convolution instead of inside it.

oneDNN's convolution backward on CPUs computes the bias gradient slowly, and autograd's sum over the batch and
pixels gives it far faster (docs/performance.md, "The bias gradient"). Without a gradient to compute (inference),
the fused bias costs nothing and is kept. Same parameters and state dict as ``nn.Conv2d`` / ``nn.ConvTranspose2d``.

Without a gradient, a transposed convolution to one channel (a decoder's last layer) runs as a matmul and a
col2im (``F.fold``): oneDNN's deconvolution with one output channel is ~2.7x slower (docs/performance.md,
"One-channel transposed convolutions").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def bias_is_trained(bias: Tensor | None) -> bool:
    """Whether autograd will want this bias's gradient from the forward pass about to run."""
    return bias is not None and bias.requires_grad and torch.is_grad_enabled()


def add_bias(y: Tensor, bias: Tensor) -> Tensor:
    """``y`` plus a per-channel ``bias``, in ``y``'s precision (bf16 under autocast)."""
    return y + bias.to(y.dtype).view(1, -1, *([1] * (y.dim() - 2)))


class Conv2d(nn.Conv2d):
    """``nn.Conv2d``; while training, the bias is added after the convolution (see the module's docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        if not bias_is_trained(self.bias):
            return super().forward(x)
        return add_bias(self._conv_forward(x, self.weight, None), self.bias)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d``; while training, the bias is added after the convolution (see the module's docstring)."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        output_padding = self._output_padding(
            x, output_size, list(self.stride), list(self.padding), list(self.kernel_size), 2, list(self.dilation)
        )
        if self.out_channels == 1 and self.groups == 1 and x.dim() == 4 and not torch.is_grad_enabled():
            return self._as_matmul_and_fold(x, output_padding)
        if not bias_is_trained(self.bias):
            return super().forward(x, output_size)
        y = F.conv_transpose2d(
            x, self.weight, None, self.stride, self.padding, output_padding, self.groups, self.dilation
        )
        return add_bias(y, self.bias)

    def _as_matmul_and_fold(self, x: Tensor, output_padding: list[int]) -> Tensor:
        """The same function as ``F.conv_transpose2d``: each input pixel times the (C_in, C_out·k·k) kernel, the
        overlapping k x k patches then summed into place by ``F.fold``."""
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        size = [(h - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1,
                (w - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1]  # fmt: skip
        patches = x.permute(0, 2, 3, 1).reshape(n, h * w, c) @ self.weight.reshape(c, -1)
        y = F.fold(patches.transpose(1, 2), size, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
        return y if self.bias is None else add_bias(y, self.bias)
