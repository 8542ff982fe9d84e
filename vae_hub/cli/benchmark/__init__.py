"""Benchmark training, inference, evaluation and the Space on this machine; print a table and write JSON.

Examples: vae-hub benchmark --data-dir /usr/share/datasets/fashion-mnist --models space/models
          vae-hub benchmark --smoke      # a minute, tiny sizes: keeps the benchmark working, proves nothing

Training is measured as whole processes side by side with the canonical PyTorch loop (DataLoader + ToTensor,
per-batch .item()), interleaved and repeated (``whole_process.py``); with no Fashion-MNIST at --data-dir both train
on random data of the same shape. Loading a ~200 MB model is measured
against the PyTorchModelHubMixin way (random init, then a copy of the weights). Inference, the NLL and the Space use the
models in --models (a folder of model folders); without it, untrained models of the bundled architectures (the
same timings; the NLL is then meaningless). Each section runs in its own process, so that its peak memory (RSS) is
its own. Nothing here uses the network; the Space section needs the space and test extras. The data section
(``--only data``; ``data_scale.py``) generates data sets of up to a million pictures and needs the data extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ...precision import describe_cpu_capability, nll_precision
from . import data_scale, sections, whole_process

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
SECTIONS = ["train", "conv", "load", "inference", "iwae", "space", "data"]
ON_REQUEST = {"data"}  # sections run only when named (or with --smoke): data writes ~4 GB and takes minutes
DEFAULT_WORKDIR = "~/.cache/vae-hub/benchmark-data"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=DEFAULT_DATA, help="Fashion-MNIST (IDX files, .gz or torchvision layout)")
    p.add_argument("--models", default=None, help="a folder of model folders (default: untrained stand-ins)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the MLP VAE, for every loop")
    p.add_argument("--conv-epochs", type=int, default=2, help="epochs of the ConvVAE, for every loop")
    p.add_argument("--runs", type=int, default=200, help="timed calls per inference figure")
    p.add_argument("--repeats", type=int, default=2, help="whole-process training runs of each loop, interleaved")
    p.add_argument("--k", type=int, default=1000, help="importance samples for the NLL figures")
    p.add_argument("--k-large", type=int, default=5000, help="importance samples for the second NLL figure (0: skip)")
    p.add_argument("--space-seconds", type=float, default=20.0, help="seconds each phase of the Space load test lasts")
    p.add_argument("--clients", type=int, default=16, help="concurrent Space clients (8 during the live training)")
    p.add_argument("--only", nargs="+", choices=SECTIONS,
                   help=f"sections (default: all but {', '.join(sorted(ON_REQUEST))})")  # fmt: skip
    p.add_argument("--data-workdir", default=DEFAULT_WORKDIR,
                   help="data: where the generated data sets and their caches go (kept for a rerun)")  # fmt: skip
    p.add_argument("--json", default="benchmark.json", help="where the figures go")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, random data: about a minute, for CI")
    p.add_argument("--section", help=argparse.SUPPRESS)  # internal: run one section in this process
    p.add_argument("--section-args", help=argparse.SUPPRESS)
    p.add_argument("--section-out", help=argparse.SUPPRESS)


def run_section(name: str, **kwargs: Any) -> dict[str, Any]:
    """Run ``sections.<name>(**kwargs)`` in a fresh process and return its figures."""
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [
            sys.executable,
            "-m",
            "vae_hub",
            "benchmark",
            "--section",
            name,
            "--section-args",
            json.dumps(kwargs),
            "--section-out",
            str(out),
        ]
        print(f"running {name} {kwargs} ...", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def ms(stats: dict[str, float]) -> str:
    return f"{stats['median_ms']:.2f} / {stats['p99_ms']:.2f}"


TRAINING_NAMES = {"train": "MLP VAE (784-400-20)", "conv": "ConvVAE (16-D)"}


def training_rows(runs: dict[str, Any], name: str) -> list[tuple[str, str]]:
    """Whole-process seconds, speed-up, test loss and peak RSS of every loop; its epochs against their floor."""
    loops, epochs = runs["loops"], runs["epochs"]
    ref = loops["reference"]
    rows = [
        (
            f"{name}, {epochs} epoch{'s' * (epochs != 1)}, whole process: reference loop",
            f"{ref['seconds']:.1f} s, test loss {ref['test_loss']:.2f}, peak RSS {ref['peak_rss_mb']:.0f} MB",
        ),
        epoch_row(runs, "reference"),
    ]
    for loop, run in loops.items():
        if loop != "reference":
            rows.append(
                (
                    f"  {loop}",
                    f"{run['seconds']:.1f} s: {run['speedup']:.2f}x (median of runs {run['median_speedup']:.2f}x), "
                    f"test loss {run['test_loss']:.2f} ({run['loss_vs_reference']:+.2f}), "
                    f"peak RSS {run['peak_rss_mb']:.0f} MB",
                )
            )
            rows.append(epoch_row(runs, loop))
    return rows  # fmt: skip


def epoch_row(runs: dict[str, Any], loop: str) -> tuple[str, str]:
    """A loop's median epoch against its floor: its matmuls and convolutions alone at the peak of its precision."""
    run = runs["loops"][loop]
    if "epoch_floor_seconds" not in run:  # figures of an older benchmark
        return ("    its epochs", "-")
    precision = run["precision"]
    peak = peak_text(runs["matmul_peak_gflops"][precision], runs.get("matmul_peak_readings", {}).get(precision))
    return (
        "    its epochs: median, floor (its FLOPs at the matmul peak)",
        f"{run['median_epoch_seconds']:.2f} s, {run['epoch_floor_seconds']:.2f} s at {peak} {precision}: "
        f"{run['epoch_over_floor']:.2f}x the floor",
    )


def peak_text(peak: float, readings: list[float] | None) -> str:
    """The peak a floor was taken at, with the spread of its readings (older figures have one reading)."""
    if not readings or len(readings) < 2:
        return f"{peak:.0f} GFLOP/s"
    return f"{peak:.0f} GFLOP/s (median of {len(readings)} readings, {min(readings):.0f}-{max(readings):.0f})"


LOADS = ("mixin", "vae-hub")


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    for key, name in TRAINING_NAMES.items():
        if key in results:
            runs = results[key]
            rows += [("data", f"{runs['data']}; fastest of {runs['repeats']} interleaved runs")] if not rows else []
            rows += training_rows(runs, name)
    if "load" in results:
        runs = results["load"]
        size = runs["vae-hub"]["weights_mb"]
        rows += [
            (f"load a {size:.0f} MB model: mixin-style / from_pretrained, median ms",
             " / ".join(f"{runs[loop]['median_ms']:.0f}" for loop in LOADS)),
            ("  memory at the peak, in copies of the weights: mixin-style / from_pretrained",
             " / ".join(f"{runs[loop]['peak_over_weights']:.2f}" for loop in LOADS)),
        ]  # fmt: skip
    for model, figures in results.get("inference", {}).get("models", {}).items():
        rows += [(f"{model}: {op} (median / p99 ms)", ms(stats)) for op, stats in figures.items()]
    for iwae in results.get("iwae", []):
        rows += [
            (f"NLL of the MLP VAE, k={iwae['k']}, {iwae['images']:,} test images, decoder in {iwae['precision']}",
             f"{iwae['seconds']:.1f} s (NLL {iwae['nll']:.3f}), {iwae['samples_per_second']:,.0f} samples/s, "
             f"decoder {iwae['decoder_gflops']:.0f} GFLOP/s"
             + ("" if iwae.get("data") == sections.DATA_NAME else f"; on {iwae['data']}: the NLL means nothing")),
        ]  # fmt: skip
        if "floor_seconds" in iwae:
            peak = peak_text(iwae["peak_gflops"], iwae.get("peak_readings"))
            rows.append(("    floor: the decoder's matmuls at the matmul peak",
                         f"{iwae['floor_seconds']:.1f} s at {peak} {iwae['precision']}: "
                         f"{iwae['over_floor']:.2f}x the floor"))  # fmt: skip
    nll = {(r["k"], r["precision"]): r for r in results.get("iwae", [])}
    k = min((key[0] for key in nll), default=None)
    if (k, "fp32") in nll and (k, "bf16") in nll:
        fp32, bf16 = nll[(k, "fp32")], nll[(k, "bf16")]
        rows.append((f"  bf16 against fp32 at k={k}",
                     f"{fp32['seconds'] / bf16['seconds']:.2f}x faster, "
                     f"NLL moves by {bf16['nll'] - fp32['nll']:+.3f} nats; "
                     f"fp32 matmul peak {fp32['matmul_peak_gflops']:.0f} GFLOP/s"))  # fmt: skip
    space = results.get("space")
    if space:
        rows.append(("Space start-up (to a served page)", f"{space['startup_seconds']:.1f} s"))
        for key, stats in space.items():
            if isinstance(stats, dict) and key != "live_training":
                label = f"Space {key.replace('_', ' ')}: median / p99 ms, errors, CPU ms per request (Space, clients)"
                cpu = f"{stats['server_cpu_ms_per_request']:.0f}" if "server_cpu_ms_per_request" in stats else "-"
                rows.append((label, f"{ms(stats)}, {stats['errors']}, {cpu}, {stats['client_cpu_ms_per_request']:.0f}"))
        live = space.get("live_training")
        if live:
            took = ", ".join(f"{t:.1f}" for t in live["seconds"]) or "none"
            rows.append((f"  live trainings meanwhile ({live['epochs']} epochs, {live['budget_s']} s budget): seconds",
                         f"{took}; {live['finished']} finished, {live['stopped_by_budget']} stopped by the budget, "
                         f"{live['errors']} errors"))  # fmt: skip
        rows.append(("Space peak RSS", f"{space['peak_rss_mb']:.0f} MB"))
    if "data" in results:
        rows += data_scale.table_rows(results["data"])
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "capability": describe_cpu_capability(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version()}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.smoke:
        args.epochs, args.conv_epochs, args.runs, args.k, args.space_seconds, args.clients = 1, 1, 5, 10, 2, 2
        args.repeats, args.k_large = 1, 20
    if args.section:  # a child process: one section
        fn = getattr(sections, args.section, None) or getattr(data_scale, args.section)
        result = fn(**json.loads(args.section_args))
        Path(args.section_out).write_text(json.dumps(result))
        return 0
    only = set(args.only or [s for s in SECTIONS if s not in ON_REQUEST or args.smoke])
    data_dir = None if args.smoke else args.data_dir
    why = None if args.smoke or not only & {"train", "conv", "iwae"} else sections.data_not_found(data_dir)
    if why:
        print(f"warning: {why}.\n  The training and NLL sections run on random data of the same shape instead: their "
              "timings hold, their test losses and NLLs mean nothing. Install Debian's dataset-fashion-mnist or "
              "pass --data-dir.", file=sys.stderr, flush=True)  # fmt: skip
    results: dict[str, Any] = {"machine": machine(), "smoke": args.smoke, "date": time.strftime("%Y-%m-%d %H:%M")}
    for key, model, epochs in (("train", "mlp", args.epochs), ("conv", "conv", args.conv_epochs)):
        if key in only:
            print(f"training: {TRAINING_NAMES[key]}, {epochs} epoch(s), {args.repeats} run(s) of each loop ...",
                  file=sys.stderr, flush=True)  # fmt: skip
            results[key] = whole_process.compare(model, data_dir, epochs, args.repeats, args.smoke)
            write_json(args.json, results)  # a later section that fails loses nothing measured so far
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-models-") as tmp:
        if "load" in only:
            folder = str(sections.write_load_model(Path(tmp) / "load", args.smoke))
            runs = 3 if args.smoke else 10
            results["load"] = {loop: run_section("load", folder=folder, loop=loop, runs=runs) for loop in LOADS}
        models = args.models or str(sections.write_stand_in_models(Path(tmp) / "stand-ins"))
        results |= model_sections(args, only, data_dir, models)
    if "data" in only:
        workdir = Path(args.data_workdir).expanduser()
        with tempfile.TemporaryDirectory(prefix="vae-hub-bench-data-") as tmp:
            results["data"] = data_scale.run(Path(tmp) if args.smoke else workdir, args.smoke)
    write_json(args.json, results)
    m = results["machine"]
    print(f"vae-hub benchmark on {m['cpu']} ({m['capability']}), {m['cores']} cores, "
          f"torch {m['torch']} ({m['threads']} threads), {results['date']}")  # fmt: skip
    print(table(results))
    print(f"figures written to {args.json}")
    return 0


def write_json(path: str, results: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(results, indent=2, default=lambda v: None if math.isnan(v) else v) + "\n")


def model_sections(args: argparse.Namespace, only: set[str], data_dir: str | None, models: str) -> dict[str, Any]:
    """The sections that use trained models: inference latency, the NLL, the Space."""
    results: dict[str, Any] = {}
    if "inference" in only:
        results["inference"] = run_section("inference", models=models, runs=args.runs, smoke=args.smoke)
    if "iwae" in only:
        native = "bf16" if nll_precision("auto", torch.device("cpu")) == "bf16" else None
        runs = [
            (args.k, "fp32"),
            *([(args.k, native)] if native else []),
            *([(args.k_large, native or "fp32")] if args.k_large else []),
        ]
        results["iwae"] = [
            run_section("iwae", models=models, data_dir=data_dir, k=k, precision=precision, smoke=args.smoke)
            for k, precision in runs
        ]
    if "space" in only:
        missing = [name for name in ("gradio", "gradio_client") if importlib.util.find_spec(name) is None]
        if missing:
            print(f"skipping the Space: {' and '.join(missing)} not installed (pip install 'vae-hub[space,test]')")
        else:
            results["space"] = run_section(
                "space", models=models, seconds=args.space_seconds, clients=args.clients, smoke=args.smoke
            )
    return results
