"""Time the importance-sampled NLL's passes that are not the decoder's matmuls, each against its alternative.

Run: python benchmarks/nll_passes.py [MODEL_FOLDER] [--against REV]   (default space/models/mlp-fashion-mnist; prefix
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 to cap the CPU at AVX2). Prints the
fastest of interleaved runs of:
- the sum of log sigmoid(|l|) over a chunk of logits (917 x 784, as at k = 1000): a log per logit, or
  ``sum_of_logs`` (logs of products of up to 120 terms);
- one batch of 131 random images x k = 1000: the codes' log p(z) - log q(z|x) for all chunks at once (the default),
  or one chunk at a time (``LATENT_BLOCK`` set to 1);
- with ``--against REV``: that batch with today's ``vae_hub/evaluation/metrics.py`` and with the file as it was at
  git revision REV (``previous.module_at``), interleaved.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from previous import module_at

from vae_hub.allocator import keep_freed_memory
from vae_hub.evaluation import metrics
from vae_hub.models import from_pretrained
from vae_hub.models.objectives import sum_of_logs


def fastest_ms(f: Callable[[], object], calls: int) -> float:
    """The fastest of 5 rounds of ``calls`` calls, in ms per call."""
    f()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="space/models/mlp-fashion-mnist")
    parser.add_argument("--against", metavar="REV", help="also time the NLL with metrics.py as at this git revision")
    args = parser.parse_args()
    keep_freed_memory()  # as `vae-hub evaluate` does
    torch.manual_seed(0)
    logits = torch.randn(7, 131, 784) * 6
    p = torch.sigmoid(logits.abs())
    print(f"sum of log sigmoid(|l|), 917 x 784:   a log each {fastest_ms(lambda: p.log().sum(-1), 50):.3f} ms, "
          f"sum_of_logs {fastest_ms(lambda: sum_of_logs(p, -1), 50):.3f} ms, "
          f"largest difference {(p.log().sum(-1) - sum_of_logs(p, -1)).abs().max():.1e} nats")  # fmt: skip

    model = from_pretrained(args.model).eval()
    x = torch.rand(131, *model.image_shape)
    default = metrics.LATENT_BLOCK
    times: dict[str, list[float]] = {"all chunks at once": [], "one chunk at a time": []}
    for _ in range(4):
        for name, block in (("all chunks at once", default), ("one chunk at a time", 1)):
            metrics.LATENT_BLOCK = block
            times[name].append(fastest_ms(lambda: metrics.importance_sampled_log_likelihood(model, x, k=1000), 1))
    metrics.LATENT_BLOCK = default
    print("131 images x k = 1000, codes' log-weights: "
          + ", ".join(f"{name} {min(t):.0f} ms" for name, t in times.items()))  # fmt: skip

    if args.against:
        old = module_at(args.against, "vae_hub.evaluation.metrics")
        versions = {"today": metrics, args.against: old}
        best = {name: float("inf") for name in versions}
        for _ in range(6):
            for name, module in versions.items():
                best[name] = min(
                    best[name], fastest_ms(lambda m=module: m.importance_sampled_log_likelihood(model, x, k=1000), 1)
                )
        print("131 images x k = 1000, metrics.py: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in best.items()))


if __name__ == "__main__":
    main()
