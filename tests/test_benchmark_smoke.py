"""vae-hub benchmark --smoke (through scripts/benchmark.py): every section runs and reports its figures.

No speed is asserted.
"""

from __future__ import annotations

import json

from helpers import run_script


def test_benchmark_smoke_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script("benchmark.py", "--smoke", "--json", out, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    for key, loops in (("train", ("reference", "vae-hub", "vae-hub-bf16")), ("conv", ("reference", "vae-hub"))):
        runs = figures[key]
        assert all(runs[f"speedup_{loop}"] > 0 for loop in loops[1:])
        for loop in loops:
            run = runs[loop]
            assert run["data"].startswith("random data") and run["images_per_second"] > 0
            assert run["test_loss"] > 0 and run["peak_rss_mb"] > 0
    for loop in ("mixin", "vae-hub"):
        load = figures["load"][loop]
        assert load["median_ms"] > 0 and load["weights_mb"] > 0 and load["peak_over_weights"] > 0
    (model, ops), *_ = figures["inference"]["models"].items()
    assert set(ops) == {"sample_64", "reconstruct_1", "encode_256"}
    assert all(op["median_ms"] > 0 and op["p99_ms"] >= op["median_ms"] for op in ops.values())
    assert figures["iwae"]["samples_per_second"] > 0 and 0 < figures["iwae"]["fraction_of_peak"] < 1
    space = figures["space"]
    for key in ("generate_1_clients", "reconstruct_1_clients", "generate_2_clients", "reconstruct_2_clients"):
        assert space[key]["errors"] == 0, space[key]["error_examples"]
        assert space[key]["runs"] > 0
    assert space["peak_rss_mb"] > 0
    assert "x the reference" in result.stdout and "Space peak RSS" in result.stdout
