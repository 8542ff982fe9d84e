"""The data section: generated data sets of 10,000 to 1,000,000 pictures, decoded once into the mapped cache, then
trained on for part of an epoch by one process and by two.

Each data set is a parquet file of 32x32 RGB PNGs (a coloured shape on a gradient, labelled 0-9), written once
into the work folder and reused. For each: the decoding time per picture (reading the parquet file, the headers,
decoding in worker processes, writing the cache), then training images per second of the MLP VAE and the private
memory (RssAnon, sampled) at its peak, with the images' share of the mapped file (its Rss, and its Pss: the pages
shared between processes counted once across them), in one process and in two (``torch.distributed.run``).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .timing import status_kb

SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZES = (2_000, 6_000)
SIDE = 32
ROWS_PER_GROUP = 10_000  # pictures per parquet row group, and per generating task
BATCH = 64
WARMUP_STEPS = 20
WINDOW_STEPS = 120  # steps per timed window (under an epoch of 10,000 pictures); the figure is the median
WINDOWS = 7


def picture(rng: np.random.Generator) -> tuple[bytes, int]:
    """A PNG of a coloured shape (its label: 0-4 ellipses, 5-9 rectangles, by size) on a gradient."""
    label = int(rng.integers(10))
    ramp = np.linspace(0, 1, SIDE, dtype=np.float32)
    base = rng.integers(0, 128, 3).astype(np.float32)
    pixels = (base + 100 * ramp[:, None, None] * rng.random(3, dtype=np.float32)).repeat(SIDE, 1)
    image = Image.fromarray(pixels.astype(np.uint8))
    r = 4 + (label % 5) * 2
    cx, cy = rng.integers(r, SIDE - r, 2)
    shape = ImageDraw.Draw(image).ellipse if label < 5 else ImageDraw.Draw(image).rectangle
    shape((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.integers(128, 256, 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), label


def _group(seed_and_n: tuple[int, int]) -> tuple[list[bytes], list[int]]:
    seed, n = seed_and_n
    rng = np.random.default_rng(seed)
    pictures = [picture(rng) for _ in range(n)]
    return [p for p, _ in pictures], [label for _, label in pictures]


def write_pictures(path: Path, n: int) -> Path:
    """A parquet file of ``n`` pictures with the features ``datasets`` reads as Image and integer label columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_file() and pq.read_metadata(path).num_rows == n:
        return path
    features = {"image": {"_type": "Image"}, "label": {"dtype": "int64", "_type": "Value"}}
    schema = pa.schema(
        [("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64())],
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    tasks = [(seed, min(ROWS_PER_GROUP, n - start)) for seed, start in enumerate(range(0, n, ROWS_PER_GROUP))]
    partial = path.with_suffix(".partial")
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool, pq.ParquetWriter(partial, schema) as w:
        for pictures, labels in pool.imap(_group, tasks):
            cells = [{"bytes": p, "path": None} for p in pictures]
            w.write_table(pa.table({"image": cells, "label": labels}, schema=schema))
    partial.replace(path)
    return path


# --- measuring memory ---------------------------------------------------------------------------------------------
class PeakSampler:
    """The largest RssAnon (private memory) of this process while it runs, sampled every 10 ms."""

    def __init__(self) -> None:
        self.peak_kb, self._stop = status_kb("RssAnon"), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak_kb = max(self.peak_kb, status_kb("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak_kb, status_kb("RssAnon")) / 1024


def mapping_mb(suffix: str) -> dict[str, float]:
    """Rss and Pss (MB) of this process's mappings of files whose name ends with ``suffix``."""
    rss = pss = 0
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            inside = line.rstrip().endswith(suffix)
        elif inside and line.startswith("Rss:"):
            rss += int(line.split()[1])
        elif inside and line.startswith("Pss:"):
            pss += int(line.split()[1])
    return {"images_rss_mb": rss / 1024, "images_pss_mb": pss / 1024}


# --- the two child processes ------------------------------------------------------------------------------------
def data_decode(dataset: str, cache: str) -> dict[str, Any]:
    """Decode ``dataset`` into the cache (from nothing): seconds per picture and this process's peak memory."""
    from ...data.sources import load_splits
    from ...data.spec import DataSpec

    sampler = PeakSampler()
    start = time.perf_counter()
    splits = load_splits(DataSpec(dataset=dataset, cache_dir=cache), progress=False)
    seconds = time.perf_counter() - start
    n = len(splits.train) + len(splits.test)
    return {"images": n, "seconds": seconds, "us_per_image": seconds / n * 1e6, "peak_private_mb": sampler.stop(),
            "decoded_mb": (splits.train.images.nbytes + splits.test.images.nbytes) / 2**20}  # fmt: skip


def data_train(dataset: str, cache: str, out: str, steps: int, windows: int) -> dict[str, Any]:
    """Train the MLP VAE on the cached ``dataset`` for a few windows of ``steps`` steps: images per second."""
    from ...training.config import TrainConfig
    from ...training.trainer import Trainer

    sampler = PeakSampler()
    start_private = status_kb("RssAnon") / 1024
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-data-") as tmp:
        config = TrainConfig(dataset=dataset, cache_dir=cache, output_dir=tmp, cpu=True, progress=False,
                             batch_size=BATCH, epochs=windows + 1, eval_k=0)  # fmt: skip
        trainer = Trainer(config)
        trainer.ddp_model = trainer.accelerator.prepare(trainer.model, device_placement=[False])
        trainer.train_epoch(0, max_steps=WARMUP_STEPS)
        rates, steps = [], min(steps, trainer.steps_per_epoch)  # a small data set's epoch may be shorter
        for epoch in range(1, windows + 1):
            trainer.accelerator.wait_for_everyone()
            began = time.perf_counter()
            trainer.train_epoch(epoch, max_steps=steps)
            trainer.accelerator.wait_for_everyone()
            rates.append(steps * BATCH * trainer.world / (time.perf_counter() - began))
        result = {"rank": trainer.rank, "world": trainer.world, "images": trainer.n_train, "steps": steps,
                  "images_per_second": statistics.median(rates), "windows": rates,
                  "start_private_mb": start_private, "fused_step": trainer.fused_step is not None,
                  **mapping_mb("images.u8")}  # fmt: skip
        result["peak_private_mb"] = sampler.stop()
    Path(f"{out}.{trainer.rank}").write_text(json.dumps(result))
    return result


# --- the section, run from the benchmark's main process --------------------------------------------------------
def section(command: str, kwargs: dict[str, Any], processes: int) -> list[dict[str, Any]]:
    """Run ``command`` (data_decode or data_train) in a fresh process, or in ``processes`` of them (torchrun)."""
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
        out = str(Path(tmp) / "out.json")
        kwargs = kwargs | ({"out": out} if command == "data_train" else {})
        args = ["-m", "vae_hub", "benchmark", "--section", command, "--section-args", json.dumps(kwargs),
                "--section-out", out]  # fmt: skip
        if processes > 1:
            launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
            cmd = [sys.executable, *launcher, *args]
        else:
            cmd = [sys.executable, *args]
        print(f"running {command} {kwargs} in {processes} process(es) ...", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        if command == "data_train":
            return [json.loads(Path(f"{out}.{rank}").read_text()) for rank in range(processes)]
        return [json.loads(Path(out).read_text())]


def run(workdir: Path, smoke: bool) -> dict[str, Any]:
    """Every size: generate (once), decode (afresh), train in one process and in two."""
    workdir.mkdir(parents=True, exist_ok=True)
    steps, windows = (10, 1) if smoke else (WINDOW_STEPS, WINDOWS)
    results: dict[str, Any] = {"workdir": str(workdir), "batch_size": BATCH, "steps": steps, "rows": []}
    for n in SMOKE_SIZES if smoke else SIZES:
        print(f"data: writing {n:,} pictures ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        dataset = str(write_pictures(workdir / f"pictures-{n}.parquet", n))
        row: dict[str, Any] = {"pictures": n, "generate_seconds": time.perf_counter() - began,
                               "parquet_mb": Path(dataset).stat().st_size / 2**20}  # fmt: skip
        cache = workdir / f"cache-{n}"
        subprocess.run(["rm", "-rf", str(cache)], check=True)  # decoded afresh: the figure is the decoding's
        row["decode"] = section("data_decode", {"dataset": dataset, "cache": str(cache)}, 1)[0]
        kwargs = {"dataset": dataset, "cache": str(cache), "steps": steps, "windows": windows}
        row["train"] = {str(p): section("data_train", kwargs, p) for p in (1, 2)}
        results["rows"].append(row)
    return results


def table_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of the benchmark's table."""
    rows = []
    for row in results["rows"]:
        d, one, two = row["decode"], row["train"]["1"][0], row["train"]["2"]
        rows += [
            (f"data: {row['pictures']:,} pictures 32x32 RGB ({row['parquet_mb']:.0f} MB parquet, "
             f"{d['decoded_mb']:.0f} MB decoded)",
             f"decode {d['us_per_image']:.0f} us/picture ({d['seconds']:.1f} s, "
             f"peak private {d['peak_private_mb']:.0f} MB)"),
            ("  train, 1 process: images/s, peak private memory, images mapped (Rss / Pss)",
             f"{one['images_per_second']:,.0f}, {one['peak_private_mb']:.0f} MB, "
             f"{one['images_rss_mb']:.0f} / {one['images_pss_mb']:.0f} MB"),
            ("  train, 2 processes: images/s together, peak private memory (sum), images Pss (sum)",
             f"{two[0]['images_per_second']:,.0f}, {sum(r['peak_private_mb'] for r in two):.0f} MB "
             f"({' + '.join(format(r['peak_private_mb'], '.0f') for r in two)}), "
             f"{sum(r['images_pss_mb'] for r in two):.0f} MB"),
        ]  # fmt: skip
    return rows
