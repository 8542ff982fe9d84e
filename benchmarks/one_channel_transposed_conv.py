"""Time a stride-2 4x4 transposed convolution to one channel as oneDNN runs it and as vae-hub's layer does (a
matmul and a sum of shifted slices, ``MatmulAndFold``), without a gradient.

Run: python benchmarks/one_channel_transposed_conv.py   (prefix ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
MKL_ENABLE_INSTRUCTIONS=AVX2 to cap the CPU at AVX2). Prints, per shape, the largest difference and the fastest of
5 x 10 calls in fp32 and in bf16 autocast. Then, for the decoders' last layer, forward and backward as in
training: oneDNN, and vae-hub's layer (its matmuls with their own backward in fp32; oneDNN's under bf16 autocast,
where it is faster).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from vae_hub.models.layers import ConvTranspose2d

SHAPES = [(128, 32, 14), (500, 32, 14), (1024, 32, 14), (128, 16, 16)]  # N, input channels, side


def as_matmul(w: torch.Tensor):
    """vae-hub's layer with weights ``w`` (one output channel)."""
    layer = ConvTranspose2d(w.shape[0], 1, 4, stride=2, padding=1, bias=False)
    layer.weight.data = w
    return lambda x, _: layer(x)


def onednn(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv_transpose2d(x, w, None, 2, 1)


def fastest_ms(f, x: torch.Tensor, w: torch.Tensor, bf16: bool) -> float:
    best = float("inf")
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(10):
                f(x, w)
            best = min(best, (time.perf_counter() - start) / 10)
    return best * 1e3


def training_ms(layer: torch.nn.Module, x: torch.Tensor, bf16: bool) -> float:
    """Forward and backward of ``layer`` on ``x`` (the input's gradient too, as inside a decoder)."""
    x = x.detach().requires_grad_()
    grad = torch.randn(x.shape[0], 1, 2 * x.shape[2], 2 * x.shape[3])
    best = float("inf")
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(10):
                torch.autograd.grad(layer(x), [x, *layer.parameters()], grad)
            best = min(best, (time.perf_counter() - start) / 10)
    return best * 1e3


if __name__ == "__main__":
    torch.manual_seed(0)
    for n, c_in, side in SHAPES:
        x = torch.randn(n, c_in, side, side).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c_in, 1, 4, 4)
        matmul = as_matmul(w)
        error = (onednn(x, w) - matmul(x, w)).abs().max().item()
        times = "  ".join(
            f"{'bf16' if bf16 else 'fp32'}: oneDNN {fastest_ms(onednn, x, w, bf16):.2f} ms, "
            f"vae-hub's layer {fastest_ms(matmul, x, w, bf16):.2f} ms"
            for bf16 in (False, True)
        )
        print(f"N={n} {c_in}->1 channels, {side}x{side}: max difference {error:.1e}  {times}")
    x = torch.randn(128, 32, 14, 14).contiguous(memory_format=torch.channels_last)
    theirs = torch.nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1, bias=False).to(memory_format=torch.channels_last)
    ours = ConvTranspose2d(32, 1, 4, stride=2, padding=1, bias=False).to(memory_format=torch.channels_last)
    ours.load_state_dict(theirs.state_dict())
    print("training, N=128 32->1 channels, 14x14, forward and backward:  " + "  ".join(
        f"{'bf16' if bf16 else 'fp32'}: oneDNN {training_ms(theirs, x, bf16):.2f} ms, "
        f"vae-hub's layer {training_ms(ours, x, bf16):.2f} ms" for bf16 in (False, True)
    ))  # fmt: skip
