"""Time each batch of the importance-sampled NLL over the test set, with the fp32 matmul peak measured between them.

Run: python benchmarks/nll_batch_times.py [MODEL_FOLDER] [DATA_DIR] [K]   (defaults space/models/mlp-fashion-mnist,
/usr/share/datasets/fashion-mnist, 1000; prefix ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
MKL_ENABLE_INSTRUCTIONS=AVX2 to cap the CPU at AVX2). ``vae-hub benchmark`` reports one whole run against one
peak; this shows how the run's batches spread (a shared host's slow spells) and what the ratio to the floor is
for the fastest and the median batch.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from vae_hub.allocator import keep_freed_memory
from vae_hub.cli.benchmark import sections
from vae_hub.cli.benchmark.flops import decoder_flops_per_sample
from vae_hub.cli.benchmark.timing import matmul_gflops
from vae_hub.data.image_data import to_unit
from vae_hub.data.named_sets import load_dataset
from vae_hub.evaluation.metrics import importance_sampled_log_likelihood, iwae_batch_size
from vae_hub.models import from_pretrained

PEAK_EVERY = 10  # batches between two measurements of the matmul peak


def main() -> None:
    keep_freed_memory()  # as `vae-hub evaluate` does
    folder = sys.argv[1] if len(sys.argv) > 1 else "space/models/mlp-fashion-mnist"
    data_dir = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    model = from_pretrained(folder)
    if why := sections.data_not_found(data_dir):
        raise SystemExit(f"{why}: this script times the NLL on the real test images")
    with tempfile.TemporaryDirectory() as tmp:
        root, _, _ = sections.data_source(data_dir, Path(tmp), smoke=False)
        images = to_unit(load_dataset(sections.DATASET, root, train=False, download=False).images)
    batch = iwae_batch_size(k, batch_size=len(images))
    g = torch.Generator().manual_seed(0)
    seconds, peaks = [], []
    for i, x in enumerate(images.split(batch)):
        if i % PEAK_EVERY == 0:
            peaks.append(matmul_gflops())
        start = time.perf_counter()
        importance_sampled_log_likelihood(model, x, k=k, generator=g)
        seconds.append(time.perf_counter() - start)
    full = seconds[1:-1] or seconds  # the first warms up, the last is smaller
    floor = batch * k * decoder_flops_per_sample(model) / (statistics.median(peaks) * 1e9)
    print(f"{len(seconds)} batches of {batch} images x k = {k}: {sum(seconds):.1f} s in all")
    print(f"per full batch: fastest {min(full) * 1e3:.0f} ms, median {statistics.median(full) * 1e3:.0f} ms, "
          f"slowest {max(full) * 1e3:.0f} ms; floor {floor * 1e3:.0f} ms at the median peak")  # fmt: skip
    print(f"over the floor: fastest {min(full) / floor:.2f}x, median {statistics.median(full) / floor:.2f}x")
    print("fp32 matmul peak every", PEAK_EVERY, "batches (GFLOP/s):", " ".join(f"{p:.0f}" for p in peaks))
    print("ms per batch:", " ".join(f"{s * 1e3:.0f}" for s in seconds))


if __name__ == "__main__":
    main()
