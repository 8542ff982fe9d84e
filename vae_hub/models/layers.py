"""Convolutions whose bias, while training, is added after the convolution instead of inside it.

oneDNN's convolution backward on CPUs computes the bias gradient slowly, and autograd's sum over the batch and
pixels gives it far faster (docs/performance.md, "The bias gradient"). Without a gradient to compute (inference),
the fused bias costs nothing and is kept. Same parameters and state dict as ``nn.Conv2d`` / ``nn.ConvTranspose2d``.

A transposed convolution to one channel (a decoder's last layer) runs as a matmul and a col2im (``F.fold``)
without a gradient, and in fp32 training too, its backward then a convolution and an im2col (``F.unfold``) with a
matmul: oneDNN's deconvolution with one output channel is ~2.7x slower (docs/performance.md, "One-channel transposed
convolutions").
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
        if self.out_channels == 1 and self.groups == 1 and x.dim() == 4 and self._matmul_pays(x):
            y = self._as_matmul_and_fold(x, output_padding)
            return y if self.bias is None else add_bias(y, self.bias)
        if not bias_is_trained(self.bias):
            return super().forward(x, output_size)
        y = F.conv_transpose2d(
            x, self.weight, None, self.stride, self.padding, output_padding, self.groups, self.dilation
        )
        return add_bias(y, self.bias)

    @staticmethod
    def _matmul_pays(x: Tensor) -> bool:
        """Without a gradient always; with one, in fp32 on a CPU (under bf16 autocast oneDNN's backward wins)."""
        if not torch.is_grad_enabled():
            return True
        return x.device.type == "cpu" and not torch.is_autocast_enabled("cpu")

    def _output_shape(self, x: Tensor, output_padding: list[int]) -> tuple[int, int]:
        """The output's (H, W), as ``F.conv_transpose2d`` computes it."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        h, w = x.shape[-2:]
        return ((h - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1,
                (w - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1)  # fmt: skip

    def _as_matmul_and_fold(self, x: Tensor, output_padding: list[int]) -> Tensor:
        """``F.conv_transpose2d`` without the bias, as ``MatmulAndFold`` computes it."""
        return MatmulAndFold.apply(x, self.weight, self._output_shape(x, output_padding), self.kernel_size,
                                   self.dilation, self.padding, self.stride)  # fmt: skip


class MatmulAndFold(torch.autograd.Function):
    """``F.conv_transpose2d(x, weight)`` (one group, no bias): each input pixel times the (C_in, C_out·k·k) kernel,
    the overlapping k x k patches then summed into place by ``F.fold``.

    Backward: the input's gradient is the convolution of the output's gradient with the same kernel (the adjoint),
    the kernel's is the input pixels times the output gradient's k x k patches (``F.unfold``), one matmul.
    """

    @staticmethod
    def forward(ctx, x, weight, size, kernel, dilation, padding, stride):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x, weight)
        ctx.geometry = kernel, dilation, padding, stride
        n, c, h, w = x.shape
        patches = x.permute(0, 2, 3, 1).reshape(n, h * w, c) @ weight.reshape(c, -1)
        return F.fold(patches.transpose(1, 2), size, kernel, dilation=dilation, padding=padding, stride=stride)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        kernel, dilation, padding, stride = ctx.geometry
        n, c, h, w = x.shape
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv2d(grad, weight, None, stride, padding, dilation)
        if ctx.needs_input_grad[1]:
            cols = F.unfold(grad, kernel, dilation=dilation, padding=padding, stride=stride)  # (N, C_out·k·k, h·w)
            pixels = x.permute(0, 2, 3, 1).reshape(n * h * w, c)
            grad_weight = (pixels.t() @ cols.transpose(1, 2).reshape(n * h * w, -1)).view(weight.shape)
        return grad_x, grad_weight, None, None, None, None, None
