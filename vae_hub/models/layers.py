"""Convolutions whose bias, while training, is added after the convolution instead of inside it.

oneDNN's convolution backward on CPUs computes the bias gradient slowly, and autograd's sum over the batch and
pixels gives it far faster (docs/performance.md, "The bias gradient"). Without a gradient to compute (inference),
the fused bias costs nothing and is kept. Same parameters and state dict as ``nn.Conv2d`` / ``nn.ConvTranspose2d``.

A transposed convolution to one channel (a decoder's last layer) runs as a matmul and a sum of shifted slices
without a gradient, and in fp32 training too, its backward then as two matmuls: oneDNN's deconvolution with one
output channel is ~2.7x slower (docs/performance.md, "One-channel transposed convolutions").
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
        geometry = PatchGeometry(tuple(x.shape), self._output_shape(x, output_padding), self.kernel_size,
                                 self.dilation, self.padding, self.stride)  # fmt: skip
        return MatmulAndFold.apply(x, self.weight, geometry)


class PatchGeometry:
    """Where the k x k patches of a stride-s transposed convolution from (N, C, h, w) to one (H, W) channel land,
    in stride-s phases.

    The kernel is widened (dilation's gaps as zeros, then zeros up to a multiple m·s of the stride), so output row
    ``s·(i + q) + a`` (before the padding is cropped) receives kernel row ``s·q + a`` of input row ``i``: for each
    of the s x s phases (a, b) the patches add up as m x m shifted copies of an h x w grid, plain slices.
    """

    def __init__(self, small: tuple[int, ...], size: tuple[int, int], kernel, dilation, padding, stride) -> None:  # noqa: ANN001
        self.n, self.c, self.h, self.w = small  # the side with C channels; ``size`` is the one channel's (H, W)
        self.size, self.padding, self.stride, self.dilation, self.kernel = size, padding, stride, dilation, kernel
        self.dilated = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
        self.m = [-(-k // s) for k, s in zip(self.dilated, stride, strict=True)]  # kernel rows per phase
        self.full = [(self.h + self.m[0] - 1) * stride[0], (self.w + self.m[1] - 1) * stride[1]]

    def wide_kernel(self, weight: Tensor) -> Tensor:
        """The (C_in, k'·k') kernel with the gaps and the padding to m·s as zeros."""
        (mh, mw), (sh, sw) = self.m, self.stride
        if list(self.kernel) == [mh * sh, mw * sw]:  # dilation 1, kernel a multiple of the stride: as it is
            return weight.reshape(self.c, -1)
        wide = weight.new_zeros(self.c, mh * sh, mw * sw)
        wide[:, : self.dilated[0] : self.dilation[0], : self.dilated[1] : self.dilation[1]] = weight[:, 0]
        return wide.view(self.c, -1)

    def narrow_kernel(self, wide: Tensor) -> Tensor:
        """``wide_kernel``'s adjoint: the (C_in, 1, kh, kw) entries of a (C_in, k'·k') gradient."""
        (mh, mw), (sh, sw) = self.m, self.stride
        wide = wide.view(self.c, 1, mh * sh, mw * sw)
        return wide[..., : self.dilated[0] : self.dilation[0], : self.dilated[1] : self.dilation[1]].contiguous()

    def crop(self) -> tuple[int, int, int, int]:
        """``F.pad``'s (left, right, top, bottom) from the uncropped output to the asked size (negative: a crop)."""
        (ph, pw), (height, width) = self.padding, self.size
        return -pw, pw + width - self.full[1], -ph, ph + height - self.full[0]

    def fold(self, patches: Tensor) -> Tensor:
        """(k'·k', N·h·w) patches summed into place: the (N, 1, H, W) output."""
        (mh, mw), (sh, sw), n, h, w = self.m, self.stride, self.n, self.h, self.w
        p = patches.view(mh, sh, mw, sw, n, h, w)
        phases = patches.new_zeros(sh, sw, n, h + mh - 1, w + mw - 1)
        for q in range(mh):
            for r in range(mw):
                phases[:, :, :, q : q + h, r : r + w] += p[q, :, r]
        full = phases.permute(2, 3, 0, 4, 1).reshape(n, 1, *self.full)
        return F.pad(full, self.crop())

    def unfold(self, image: Tensor) -> Tensor:
        """``fold``'s adjoint: the (k'·k', N·h·w) patches of an (N, 1, H, W) image."""
        (mh, mw), (sh, sw), n, h, w = self.m, self.stride, self.n, self.h, self.w
        left, right, top, bottom = self.crop()
        full = F.pad(image, (-left, -right, -top, -bottom)).view(n, h + mh - 1, sh, w + mw - 1, sw)
        phases = full.permute(2, 4, 0, 1, 3).contiguous()  # (sh, sw, N, h + mh - 1, w + mw - 1)
        s_a, s_b, s_n, s_u, _ = phases.stride()
        patches = phases.as_strided((mh, sh, mw, sw, n, h, w), (s_u, s_a, 1, s_b, s_n, s_u, 1))
        return patches.reshape(mh * sh * mw * sw, n * h * w)

    def channels_last(self, rows: Tensor) -> Tensor:
        """(N·h·w, C) rows as the (N, C, h, w) tensor they are, in channels-last strides."""
        return rows.view(self.n, self.h, self.w, self.c).permute(0, 3, 1, 2)

    def rows(self, x: Tensor) -> Tensor:
        """``channels_last``'s inverse: (N·h·w, C), a view when ``x`` is channels-last."""
        return x.permute(0, 2, 3, 1).reshape(-1, self.c)


class MatmulAndFold(torch.autograd.Function):
    """``F.conv_transpose2d(x, weight)`` to one channel (one group, no bias): each input pixel times the
    (C_in, k·k) kernel, the overlapping k x k patches then summed into place (``PatchGeometry.fold``).

    Backward: the output gradient's patches (``PatchGeometry.unfold``) times the kernel are the input's gradient
    (the adjoint), and the input pixels times them the kernel's: two matmuls.
    """

    @staticmethod
    def forward(ctx, x, weight, geometry):  # noqa: ANN001, ANN205
        kernel, pixels = geometry.wide_kernel(weight), geometry.rows(x)
        ctx.save_for_backward(pixels, kernel)
        ctx.geometry = geometry
        return geometry.fold(kernel.t() @ pixels.t())

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        (pixels, kernel), geometry = ctx.saved_tensors, ctx.geometry
        patches = geometry.unfold(grad.contiguous())
        grad_x = geometry.channels_last(patches.t() @ kernel.t()) if ctx.needs_input_grad[0] else None
        grad_weight = geometry.narrow_kernel(pixels.t() @ patches.t()) if ctx.needs_input_grad[1] else None
        return grad_x, grad_weight, None
