"""vae-hub benchmark --smoke (through scripts/benchmark.py): every section runs and reports its figures.

No speed is asserted.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import run_script

import vae_hub
from vae_hub.precision import CAPABILITIES


@pytest.mark.slow  # the benchmark starts its own processes and a Space
def test_benchmark_smoke_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script("benchmark.py", "--smoke", "--json", out, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    expected = {
        "train": {"reference", "vae-hub", "vae-hub --mixed-precision no", "vae-hub --no-fused-step"},
        "conv": {"reference", "vae-hub", "vae-hub --mixed-precision no"},
    }
    for key, loops in expected.items():
        runs = figures[key]
        assert runs["data"].startswith("random data") and set(runs["loops"]) == loops
        # the floors' peak: the median of readings taken before each run and after the last
        for precision, readings in runs["matmul_peak_readings"].items():
            assert len(readings) == len(loops) * runs["repeats"] + 1 and min(readings) > 0
            assert runs["matmul_peak_gflops"][precision] == statistics.median(readings)
        for loop, run in runs["loops"].items():  # every loop ran as its own process, to the end
            assert run["seconds"] > 0 and run["test_loss"] > 0 and run["peak_rss_mb"] > 100
            assert len(run["epoch_seconds"]) == 1
            # the floor: the smoke data's 1,024 + 256 images of FLOPs at the measured peak, below the epoch itself
            assert 0 < run["epoch_floor_seconds"] < run["median_epoch_seconds"]
            assert run["epoch_over_floor"] == pytest.approx(run["median_epoch_seconds"] / run["epoch_floor_seconds"])
            if loop != "reference":
                assert run["speedup"] > 0 and abs(run["loss_vs_reference"]) < 1000
    for loop in ("mixin", "vae-hub"):
        load = figures["load"][loop]
        assert load["median_ms"] > 0 and load["weights_mb"] > 0 and load["peak_over_weights"] > 0
    (model, ops), *_ = figures["inference"]["models"].items()
    assert set(ops) == {"sample_64", "reconstruct_1", "encode_256"}
    assert all(op["median_ms"] > 0 and op["p99_ms"] >= op["median_ms"] for op in ops.values())
    nll = figures["iwae"]
    assert [r["k"] for r in nll][0] == 10 and nll[0]["precision"] == "fp32" and nll[-1]["k"] == 20
    assert all(r["samples_per_second"] > 0 and r["nll"] > 0 for r in nll)
    assert all(0 < r["floor_seconds"] < r["seconds"] and r["over_floor"] > 1 for r in nll)
    assert all(len(r["peak_readings"]) >= 2 and r["peak_gflops"] == statistics.median(r["peak_readings"]) for r in nll)
    assert " GFLOP/s (median of " in result.stdout
    assert figures["machine"]["capability"].split(" (")[0] in CAPABILITIES + ("Arm", "Arm with BF16")
    space = figures["space"]
    phases = ("generate_1_clients", "reconstruct_1_clients", "generate_2_clients", "reconstruct_2_clients",
              "generate_2_clients_during_live_training", "live_training")  # fmt: skip
    for key in phases:
        assert space[key]["errors"] == 0, space[key]["error_examples"]
        assert space[key]["runs"] > 0
    assert space["live_training"]["finished"] + space["live_training"]["stopped_by_budget"] >= 1
    assert space["peak_rss_mb"] > 0
    data = figures["data"]["rows"]
    assert [row["pictures"] for row in data] == [2_000, 6_000]
    for row in data:
        assert row["decode"]["images"] == row["pictures"] and row["decode"]["us_per_image"] > 0
        one, two = row["train"]["1"], row["train"]["2"]
        assert len(one) == 1 and [r["rank"] for r in two] == [0, 1] and all(r["world"] == 2 for r in two)
        assert all(
            r["images_per_second"] > 0 and r["peak_private_mb"] > 0 and r["images_rss_mb"] > 0 for r in one + two
        )
    assert f"({figures['machine']['capability']}), " in result.stdout and "x the floor" in result.stdout
    assert "whole process: reference loop" in result.stdout and "Space peak RSS" in result.stdout
    assert "train, 2 processes: images/s together" in result.stdout


def test_the_space_clients_load_only_gradio_client_as_an_api_user_does():
    """The load test's clients must not carry torch: their garbage collections would stall the Space they time."""
    client = Path(vae_hub.__file__).parent / "cli" / "benchmark" / "space_client.py"
    check = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); import gradio_client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'vae_hub', 'numpy')))"
    )
    result = subprocess.run([sys.executable, "-c", check, str(client)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


def test_the_benchmark_warns_before_it_measures_on_random_data(tmp_path, capsys, monkeypatch):
    """Without Fashion-MNIST at --data-dir the figures fall back to random data: said first, and beside the NLL."""
    import argparse

    from idx_data import write_idx

    from vae_hub.cli import benchmark
    from vae_hub.cli.benchmark import sections

    assert sections.data_not_found(str(write_idx(tmp_path / "found", gz=True))) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "train-images-idx3-ubyte" in sections.data_not_found(str(empty))

    nll = {"data": "random data (60,000 + 10,000 images)", "images": 10_000, "k": 1000, "precision": "fp32",
           "nll": 543.2, "seconds": 50.0, "samples_per_second": 2e5, "decoder_gflops": 120.0}  # fmt: skip
    monkeypatch.setattr(benchmark, "model_sections", lambda *args: {"iwae": [nll]})
    parser = argparse.ArgumentParser()
    benchmark.configure(parser)
    args = parser.parse_args(["--only", "iwae", "--data-dir", str(empty), "--json", str(tmp_path / "b.json")])
    assert benchmark.run(args) == 0
    out = capsys.readouterr()
    assert out.err.startswith("warning: fashion-mnist was not found") and "random data" in out.err
    assert "on random data (60,000 + 10,000 images): the NLL means nothing" in out.out


def test_each_training_loop_is_floored_at_the_peak_of_its_own_precision(monkeypatch):
    from vae_hub.cli.benchmark import timing, whole_process

    variants = {"mlp": {"fp16": ["--mixed-precision", "fp16"], "bf16": ["--mixed-precision", "bf16"],
                        "fp32": ["--mixed-precision", "no"]}}  # fmt: skip
    monkeypatch.setattr(whole_process, "VARIANTS", variants)
    assert [whole_process.loop_precision("mlp", loop) for loop in ("reference", "fp16", "bf16", "fp32")] == [
        "fp32", "fp16", "bf16", "fp32"
    ]  # fmt: skip
    assert timing.PEAK_DTYPES[whole_process.loop_precision("mlp", "fp16")] is torch.float16
