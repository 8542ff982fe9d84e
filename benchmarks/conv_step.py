"""Time the ConvVAE's fp32 training step (batch 128, channels-last, Adam), with today's convolution layers and
with ``vae_hub/models/layers.py`` as it was at a git revision, interleaved in one process.

Run: python benchmarks/conv_step.py --against REV [--rounds 8]   (prefix ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 to cap the CPU at AVX2). Both models start from the same
weights; each round times 40 steps of each; prints the fastest round of each and the ratio, and the largest
difference of their losses after the same steps (the layers compute the same function).

python benchmarks/conv_step.py --layers: where today's step goes instead, over 60 steps: forward, backward and
Adam, and each module's forward and backward (timers in module hooks; torch.profiler's per-op rows were
distorted for this step, docs/performance.md, "A sixth pass").
"""

from __future__ import annotations

import argparse
import collections
import copy
import time
import warnings

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


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> tuple[float, ...]:
    """One step; its loss, and the seconds of its forward, backward and Adam."""
    start = time.perf_counter()
    loss = elbo(model, x, beta=1.0).loss
    forward = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    backward = time.perf_counter()
    optimizer.step()
    return loss.item(), forward - start, backward - forward, time.perf_counter() - backward


def layer_times(model: nn.Module, x: torch.Tensor, steps: int = 60) -> None:
    """Print the step's forward, backward and Adam, and each module's forward and backward, in ms per step."""
    seconds: dict[str, float] = collections.defaultdict(float)
    started: dict[tuple[str, str], float] = {}
    for name, module in model.named_modules():
        if not name or list(module.children()):
            continue  # leaves only

        def begin(key: tuple[str, str]):  # noqa: ANN202
            return lambda *_: started.__setitem__(key, time.perf_counter())

        def end(key: tuple[str, str]):  # noqa: ANN202
            return lambda *_: seconds.__setitem__(
                " ".join(key), seconds[" ".join(key)] + time.perf_counter() - started[key]
            )

        label = f"{name} ({type(module).__name__})"
        module.register_forward_pre_hook(begin(("forward", label)))
        module.register_forward_hook(end(("forward", label)))
        module.register_full_backward_pre_hook(begin(("backward", label)))
        module.register_full_backward_hook(end(("backward", label)))
    warnings.filterwarnings("ignore", message="Full backward hook is firing")  # the first layer: its input has none
    optimizer = adam(list(model.parameters()), 1e-3)
    totals = [0.0, 0.0, 0.0]
    with flush_denormals():
        for _ in range(10):
            train_step(model, optimizer, x)
        seconds.clear()
        for _ in range(steps):
            totals = [t + s for t, s in zip(totals, train_step(model, optimizer, x)[1:], strict=True)]
    print(
        "ms per step: "
        + ", ".join(f"{n} {t / steps * 1e3:.2f}" for n, t in zip(("forward", "backward", "Adam"), totals, strict=True))
    )
    for key, total in sorted(seconds.items(), key=lambda item: -item[1]):
        if total / steps >= 5e-5:
            print(f"  {key:40s} {total / steps * 1e3:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="time layers.py as at this git revision too")
    parser.add_argument("--layers", action="store_true", help="where today's step goes, module by module")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    if not args.against and not args.layers:
        parser.error("give --against REV, --layers, or both")
    keep_freed_memory()  # as training does
    torch.manual_seed(0)
    base = ConvVAE().to(memory_format=torch.channels_last)
    x = torch.rand(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    if args.layers:
        layer_times(copy.deepcopy(base), x)
    if not args.against:
        return
    old_layers = module_at(args.against, "vae_hub.models.layers")
    runs = {"today": with_layers(base, layers), args.against: with_layers(base, old_layers)}
    optimizers = {name: adam(list(m.parameters()), 1e-3) for name, m in runs.items()}
    losses: dict[str, list[float]] = {name: [] for name in runs}

    def step(name: str) -> float:
        torch.manual_seed(len(losses[name]))  # the same noise for both at the same step
        return train_step(runs[name], optimizers[name], x)[0]

    best = {name: float("inf") for name in runs}
    with flush_denormals():
        for name in runs:
            for _ in range(10):
                losses[name].append(step(name))
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
