"""The figures of ``vae-hub benchmark``, one function per section; each returns a JSON-ready dict.

Every section runs in its own process (the script sees to it), so that its peak memory is its own.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_model

from ...allocator import keep_freed_memory
from ...data.image_data import to_unit
from ...data.named_sets import load_dataset, torchvision_root
from ...errors import DataNotFoundError
from ...evaluation.metrics import importance_sampled_log_likelihood, iwae_batch_size
from ...models.conv import ConvVAE
from ...models.loading import from_pretrained
from ...models.mlp import VariationalAutoencoder
from .flops import decoder_flops_per_sample
from .timing import free_port, latency, peak_rss_mb, percentiles, read_peaks, rss_mb

DATASET = "fashion-mnist"
DATA_NAME = "Fashion-MNIST"  # what the figures say they were measured on, when the data was found
SPACE_MODEL = "conv-fashion-mnist"  # the model the Space section calls
NLL_MODEL = "mlp-fashion-mnist"  # the 784-400-20 MLP VAE, for the NLL
NLL_PEAK_READINGS = 8  # matmul peak readings spread through an NLL run, ~1 s each


def write_stand_in_models(folder: Path) -> Path:
    """Untrained models with the bundled models' architectures, for timings without trained weights."""
    torch.manual_seed(0)
    ConvVAE((1, 28, 28), latent_dim=16, base_channels=32, hidden_dim=256).save_pretrained(folder / SPACE_MODEL)
    VariationalAutoencoder(784, 400, 20).save_pretrained(folder / NLL_MODEL)
    return folder


def write_random_idx(folder: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Random 28x28 uint8 images in torchvision's FashionMNIST layout: the stand-in when the data set is absent."""
    raw = folder / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(
            (2051).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, 28, 28)) + images.numpy().tobytes()
        )
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(
            (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.numpy().tobytes()
        )
    return folder


def data_not_found(data_dir: str | None) -> str | None:
    """Why the training and NLL sections would fall back to random data (no Fashion-MNIST at ``data_dir``), or None."""
    if not data_dir:
        return "no --data-dir was given"
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
        try:
            torchvision_root(DATASET, data_dir, Path(tmp))
        except DataNotFoundError as e:
            return str(e)
    return None


def data_source(data_dir: str | None, workdir: Path, smoke: bool) -> tuple[Path, str, tuple[int, int]]:
    """(a folder torchvision's FashionMNIST reads, what it holds, its training and test images)."""
    n_train, n_test = (1024, 256) if smoke else (60_000, 10_000)  # Fashion-MNIST's own sizes unless a smoke test
    if data_dir and not smoke:
        try:
            return torchvision_root(DATASET, data_dir, workdir / "cache"), DATA_NAME, (n_train, n_test)
        except DataNotFoundError:
            pass
    root = write_random_idx(workdir / "random", n_train, n_test)
    return root, f"random data ({n_train:,} + {n_test:,} images)", (n_train, n_test)


# --- inference -----------------------------------------------------------------------------------------------
def inference(models: str, runs: int, smoke: bool) -> dict[str, Any]:
    """Latency of sampling 64, reconstructing 1 and encoding 256 images with each model in ``models``."""
    results = {}
    for folder in sorted(p for p in Path(models).iterdir() if (p / "config.json").is_file()):
        model = from_pretrained(folder)
        g = torch.Generator().manual_seed(0)
        x = torch.rand(256, *model.image_shape, generator=g)
        y = 0 if model.conditional else None  # a conditional model: class 0
        with torch.inference_mode():
            results[folder.name] = {
                "sample_64": latency(lambda m=model, y=y: m.sample(64, labels=y), runs),
                "reconstruct_1": latency(lambda m=model, x=x, y=y: m.reconstruct(x[:1], labels=y), runs),
                "encode_256": latency(lambda m=model, x=x, y=y: m.encode(x, labels=y), runs),
            }
        if smoke:
            break
    return {"runs": runs, "threads": torch.get_num_threads(), "models": results, "peak_rss_mb": peak_rss_mb()}


# --- loading -------------------------------------------------------------------------------------------------
LOAD_HIDDEN = 32_000  # a seed-shaped MLP (784-H-20) of about 200 MB of weights: what a load costs shows


def write_load_model(folder: Path, smoke: bool) -> Path:
    torch.manual_seed(0)
    VariationalAutoencoder(784, 64 if smoke else LOAD_HIDDEN, 20).save_pretrained(folder)
    return folder


def load(folder: str, loop: str, runs: int) -> dict[str, Any]:
    """Time to load the model in ``folder``, and the memory it takes at the peak beyond the weights themselves.

    ``loop``: "vae-hub" (``from_pretrained``: checks, a meta-device build, the tensors read straight into it) or
    "mixin" (what ``PyTorchModelHubMixin`` does: build with a random initialisation, then copy the loaded weights).
    """
    config = {k: v for k, v in json.loads((Path(folder) / "config.json").read_text()).items() if k != "model_type"}

    def mixin() -> torch.nn.Module:
        model = VariationalAutoencoder(**config)
        load_model(model, Path(folder) / "model.safetensors", strict=True)
        return model.eval()

    load_once = (lambda: from_pretrained(folder)) if loop == "vae-hub" else mixin
    before = rss_mb()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model = load_once()
        times.append(time.perf_counter() - start)
        weights_mb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
        del model
    return {"loop": loop, "weights_mb": weights_mb, **percentiles(times), "rss_before_mb": before,
            "peak_rss_mb": peak_rss_mb(), "peak_over_weights": (peak_rss_mb() - before) / weights_mb}  # fmt: skip


# --- evaluation ----------------------------------------------------------------------------------------------
def iwae(models: str, data_dir: str | None, k: int, precision: str, smoke: bool) -> dict[str, Any]:
    """Importance-sampled NLL of the MLP VAE in ``models`` on the test set, its decoder in ``precision`` (fp32 |
    bf16): seconds, throughput, and the fp32 matmul peak for scale. The same seed, so precisions see the same z."""
    keep_freed_memory()  # this process computes the NLL and exits, as `vae-hub evaluate` does
    model = from_pretrained(Path(models) / NLL_MODEL)
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
        root, source, _ = data_source(data_dir, Path(tmp), smoke)
        images = to_unit(load_dataset(DATASET, root, train=False, download=False).images)
    if smoke:
        images = images[:64]
    batches = images.split(iwae_batch_size(k, batch_size=len(images)))
    read_every = max(1, len(batches) // NLL_PEAK_READINGS)
    readings: dict[str, list[float]] = {name: [] for name in dict.fromkeys(["fp32", precision])}
    g = torch.Generator().manual_seed(0)
    seconds, total = 0.0, 0.0
    for i, x in enumerate(batches):
        if i % read_every == 0:
            read_peaks(readings)  # untimed, between batches: the peak of the spell the batches ran in
        start = time.perf_counter()
        total -= float(importance_sampled_log_likelihood(model, x, k=k, generator=g, precision=precision).sum())
        seconds += time.perf_counter() - start
    read_peaks(readings)
    flops_per_sample = decoder_flops_per_sample(model)
    achieved = len(images) * k * flops_per_sample / seconds / 1e9
    peak, dtype_peak = statistics.median(readings["fp32"]), statistics.median(readings[precision])
    floor = len(images) * k * flops_per_sample / (dtype_peak * 1e9)  # its matmuls alone at the peak of its dtype
    return {
        "data": source,
        "images": len(images),
        "k": k,
        "precision": precision,
        "nll": total / len(images),
        "seconds": seconds,
        "samples_per_second": len(images) * k / seconds,
        "decoder_gflops": achieved,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": achieved / peak,
        "peak_gflops": dtype_peak,
        "peak_readings": readings[precision],
        "floor_seconds": floor,
        "over_floor": seconds / floor,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- the Space -----------------------------------------------------------------------------------------------
def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Space exited with code {process.returncode} before it served")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)  # start-up is a reported figure: polled finely
    raise RuntimeError(f"the Space did not answer at {url} within {timeout:.0f} s")


SPACE_PHASES = (("generate", 1), ("reconstruct", 1), ("generate", 16), ("reconstruct", 16))
TRAINING_CLIENTS = 8  # /generate clients while one visitor trains live


def space(models: str, seconds: float, clients: int, smoke: bool) -> dict[str, Any]:
    """The Space under a crowd, through gradio_client: start-up, then each phase for ``seconds``.

    Phases: /generate and /reconstruct (an uploaded picture) with 1 client and with ``clients`` at once, then
    ``TRAINING_CLIENTS`` on /generate while another visitor trains live (30 epochs, 40-s budget, again and again).
    Each client is its own process running ``space_client.py`` (Python and gradio_client, as an API user's
    program), but on this machine they share the CPU with the Space.
    """
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "VAE_HUB_MODEL": SPACE_MODEL}
    log = open(os.environ.get("VAE_HUB_SPACE_LOG", os.devnull), "w")  # noqa: SIM115 (closed below)
    command = [sys.executable, "-m", "vae_hub", "space", models, "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, process)
        results: dict[str, Any] = {"startup_seconds": time.perf_counter() - started, "seconds_per_phase": seconds}
        with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
            picture = Path(tmp) / "digit.png"
            stroke = np.zeros((28, 28), np.uint8)
            stroke[6:22, 12:16] = 255
            Image.fromarray(stroke).save(picture)
            phases = [(api, min(n, clients) if n > 1 else 1) for api, n in SPACE_PHASES]
            for api, n_clients in phases:
                cpu = cpu_seconds(process.pid)
                figures = run_clients(url, [(api, n_clients)], str(picture), seconds)[api]
                served = figures["runs"] + figures["errors"]
                figures["server_cpu_ms_per_request"] = (cpu_seconds(process.pid) - cpu) / max(served, 1) * 1e3
                results[f"{api}_{n_clients}_clients"] = figures
            n_clients = min(TRAINING_CLIENTS, clients)
            during = run_clients(url, [("train_live", 1), ("generate", n_clients)], str(picture), seconds)
            results[f"generate_{n_clients}_clients_during_live_training"] = during["generate"]
            results["live_training"] = during["train_live"]
        results["peak_rss_mb"] = peak_rss_mb(process.pid)
        return results
    finally:
        log.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(url: str, groups: list[tuple[str, int]], picture: str, seconds: float) -> dict[str, dict[str, Any]]:
    """For each (api, n) of ``groups``, n processes (``space_client.py``) calling it for ``seconds``, all at once.

    A live-training client (``train_live``) is started first and the others once it has begun.
    """
    script = str(Path(__file__).with_name("space_client.py"))
    with tempfile.TemporaryFile("w+") as log:  # the clients' stderr, shown if one fails
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": log, "text": True}
        workers: list[tuple[str, subprocess.Popen]] = []
        for api, n in groups:
            for i in range(n):
                command = [sys.executable, script, url, api, picture, SPACE_MODEL, str(i * 100_000), str(seconds)]
                workers.append((api, subprocess.Popen(command, **pipes)))
        try:
            outcomes = drive_clients(workers)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            log.seek(0)
            raise RuntimeError(f"a benchmark client of the Space failed ({e}): {log.read()[-2000:]}") from None
        finally:
            for _, w in workers:
                if w.poll() is None:
                    w.kill()
    return {api: client_figures([o for a, o in outcomes if a == api]) for api, _ in groups}


def client_figures(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency percentiles, errors and throughput of one API's clients, from what each measured."""
    start = min(o["start"] for o in outcomes)
    latencies = [t for o in outcomes for t in o["latencies"]]
    errors = [e for o in outcomes for e in o["errors"]]
    wall = max(o["end"] for o in outcomes) - start
    client_cpu = sum(o["cpu"] for o in outcomes)
    stats = percentiles(latencies) if latencies else {"median_ms": math.nan, "p99_ms": math.nan, "runs": 0}
    figures = {**stats, "clients": len(outcomes), "errors": len(errors), "error_examples": errors[:3],
               "requests_per_second": len(latencies) / wall,
               "client_cpu_ms_per_request": client_cpu / max(len(latencies) + len(errors), 1) * 1e3}  # fmt: skip
    if "messages" in outcomes[0]:  # live trainings: how long each took, and whether it finished its epochs
        messages = [m for o in outcomes for m in o["messages"]]
        figures |= {"budget_s": outcomes[0]["budget_s"], "epochs": outcomes[0]["epochs"],
                    "seconds": [round(t, 2) for t in latencies],
                    "finished": sum(m.startswith("**Done") and "budget ran out" not in m for m in messages),
                    "stopped_by_budget": sum("budget ran out" in m for m in messages)}  # fmt: skip
    return figures


def drive_clients(workers: list[tuple[str, subprocess.Popen]]) -> list[tuple[str, dict[str, Any]]]:
    """Wait for every client's warm-up, start them together (a live training first), collect what each measured."""
    for _, w in workers:
        if w.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise RuntimeError("it did not get ready")
    for api, w in sorted(workers, key=lambda aw: aw[0] != "train_live"):
        w.stdin.write("go\n")  # type: ignore[union-attr]
        w.stdin.flush()  # type: ignore[union-attr]
        if api == "train_live":
            time.sleep(2.0)  # the training's worker has started and is taking steps
    outcomes = []
    for api, w in workers:
        out, _ = w.communicate(timeout=600)
        if w.returncode != 0:
            raise RuntimeError(f"exit code {w.returncode}")
        outcomes.append((api, json.loads(out.strip().splitlines()[-1])))
    return outcomes
