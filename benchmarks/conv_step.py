"""Time the ConvVAE's fp32 training step (batch 128, channels-last, Adam), with today's convolution layers and
with ``vae_hub/models/layers.py`` as it was at a git revision, interleaved in one process.

Run: python benchmarks/conv_step.py --against REV [--rounds 8]   (prefix ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 to cap the CPU at AVX2). Both models start from the same
weights; each round times 40 steps of each; prints the fastest round of each and the ratio, and the largest
difference of their losses after the same steps (the layers compute the same function).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from previous import module_at
from torch import nn

from vae_hub.allocator import keep_freed_memory
from vae_hub.models import layers
from vae_hub.models.conv import ConvVAE
from vae_hub.models.objectives import elbo
from vae_hub.precision import flush_denormals
from vae_hub.training.trainer import adam


def with_layers(model: nn.Module, module: object) -> nn.Module:
    """A copy of ``model`` whose convolutions are ``module``'s classes (same weights)."""
    model = copy.deepcopy(model)
    for child in model.modules():
        for cls_name in ("Conv2d", "ConvTranspose2d"):
            if type(child) is getattr(layers, cls_name):
                child.__class__ = getattr(module, cls_name)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", required=True, help="time layers.py as at this git revision too")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    keep_freed_memory()  # as training does
    torch.manual_seed(0)
    base = ConvVAE().to(memory_format=torch.channels_last)
    x = torch.rand(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    old_layers = module_at(args.against, "vae_hub.models.layers")
    runs = {"today": with_layers(base, layers), args.against: with_layers(base, old_layers)}
    optimizers = {name: adam(list(m.parameters()), 1e-3) for name, m in runs.items()}
    losses: dict[str, list[float]] = {name: [] for name in runs}

    def step(name: str) -> torch.Tensor:
        torch.manual_seed(len(losses[name]))  # the same noise for both at the same step
        out = elbo(runs[name], x, beta=1.0)
        optimizers[name].zero_grad(set_to_none=True)
        out.loss.backward()
        optimizers[name].step()
        return out.loss.detach()

    best = {name: float("inf") for name in runs}
    with flush_denormals():
        for name in runs:
            for _ in range(10):
                losses[name].append(float(step(name)))
        for _ in range(args.rounds):
            for name in runs:
                start = time.perf_counter()
                for _ in range(40):
                    step(name)
                best[name] = min(best[name], (time.perf_counter() - start) / 40 * 1e3)
    difference = max(abs(a - b) for a, b in zip(*losses.values(), strict=True))
    today, old = best["today"], best[args.against]
    print(f"ConvVAE fp32 step, batch 128: today {today:.2f} ms, {args.against} {old:.2f} ms ({old / today:.3f}x); "
          f"largest loss difference over the first 10 steps {difference:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
