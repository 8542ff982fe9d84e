"""Time the importance-sampled NLL's passes that are not the decoder's matmuls, each against its alternative.

Run: python benchmarks/nll_passes.py [MODEL_FOLDER]   (default space/models/mlp-fashion-mnist; prefix
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 to cap the CPU at AVX2). Prints the
fastest of interleaved runs of:
- the sum of log sigmoid(|l|) over a chunk of logits (917 x 784, as at k = 1000): a log per logit, or
  ``sum_of_logs`` (logs of products of up to 120 terms);
- one batch of 131 random images x k = 1000: the codes' log p(z) - log q(z|x) for all chunks at once (the default),
  or one chunk at a time (``LATENT_BLOCK`` set to 1).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import torch

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
    keep_freed_memory()  # as `vae-hub evaluate` does
    torch.manual_seed(0)
    logits = torch.randn(7, 131, 784) * 6
    p = torch.sigmoid(logits.abs())
    print(f"sum of log sigmoid(|l|), 917 x 784:   a log each {fastest_ms(lambda: p.log().sum(-1), 50):.3f} ms, "
          f"sum_of_logs {fastest_ms(lambda: sum_of_logs(p, -1), 50):.3f} ms, "
          f"largest difference {(p.log().sum(-1) - sum_of_logs(p, -1)).abs().max():.1e} nats")  # fmt: skip

    model = from_pretrained(sys.argv[1] if len(sys.argv) > 1 else "space/models/mlp-fashion-mnist").eval()
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


if __name__ == "__main__":
    main()
