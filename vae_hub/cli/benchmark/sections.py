"""The figures of ``vae-hub benchmark``, one function per section; each returns a JSON-ready dict.

Every section runs in its own process (the script sees to it), so that its peak memory is its own.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import ssl
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

from ...base import from_pretrained
from ...data import DataNotFoundError, load_dataset, to_unit, torchvision_root
from ...metrics import importance_sampled_log_likelihood, iwae_batch_size
from ...models import ConvVAE, VariationalAutoencoder
from .timing import free_port, latency, matmul_gflops, peak_rss_mb, percentiles, rss_mb

DATASET = "fashion-mnist"
SPACE_MODEL = "conv-fashion-mnist"  # the model the Space section calls
NLL_MODEL = "mlp-fashion-mnist"  # the seed's MLP, for the NLL


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


def data_source(data_dir: str | None, workdir: Path, smoke: bool) -> tuple[Path, str]:
    """(a folder torchvision's FashionMNIST reads, what it holds)."""
    if data_dir and not smoke:
        try:
            return torchvision_root(DATASET, data_dir, workdir / "cache"), "Fashion-MNIST"
        except DataNotFoundError:
            pass
    n_train, n_test = (1024, 256) if smoke else (60_000, 10_000)
    return write_random_idx(workdir / "random", n_train, n_test), f"random data ({n_train:,} + {n_test:,} images)"


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
    """Importance-sampled NLL of the seed MLP in ``models`` on the test set, its decoder in ``precision`` (fp32 |
    bf16): seconds, throughput, and the fp32 matmul peak for scale. The same seed, so precisions see the same z."""
    model = from_pretrained(Path(models) / NLL_MODEL)
    with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
        root, source = data_source(data_dir, Path(tmp), smoke)
        images = to_unit(load_dataset(DATASET, root, train=False, download=False).images)
    if smoke:
        images = images[:64]
    batch = iwae_batch_size(k, batch_size=len(images))
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    total = 0.0
    for x in images.split(batch):
        total -= float(importance_sampled_log_likelihood(model, x, k=k, generator=g, precision=precision).sum())
    seconds = time.perf_counter() - start
    hidden, latent, pixels = model.decoder[0].out_features, model.latent_dim, model.input_dim
    flops_per_sample = 2 * (latent * hidden + hidden * pixels)  # the decoder's two matmuls per importance sample
    achieved = len(images) * k * flops_per_sample / seconds / 1e9
    peak = matmul_gflops()
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
            time.sleep(0.5)
    raise RuntimeError(f"the Space did not answer at {url} within {timeout:.0f} s")


def space(models: str, requests: int, clients: int, smoke: bool) -> dict[str, Any]:
    """Latency of /generate and /reconstruct through gradio_client, with 1 and with ``clients`` at once.

    Each client is its own process (as separate users are), but on this machine they share the CPU with the Space.
    """
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "VAE_HUB_MODEL": SPACE_MODEL}
    log = open(os.environ.get("VAE_HUB_SPACE_LOG", os.devnull), "w")  # noqa: SIM115 (closed below)
    command = [sys.executable, "-m", "vae_hub", "space", models, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        started = time.perf_counter()
        wait_until_up(url, process)
        results: dict[str, Any] = {"startup_seconds": time.perf_counter() - started}
        with tempfile.TemporaryDirectory(prefix="vae-hub-bench-") as tmp:
            picture = Path(tmp) / "digit.png"
            stroke = np.zeros((28, 28), np.uint8)
            stroke[6:22, 12:16] = 255
            Image.fromarray(stroke).save(picture)
            for n_clients in (1, clients):
                for api in ("generate", "reconstruct"):
                    cpu = cpu_seconds(process.pid)
                    figures = run_clients(url, api, str(picture), n_clients, requests)
                    served = figures["runs"] + figures["errors"]
                    figures["server_cpu_ms_per_request"] = (cpu_seconds(process.pid) - cpu) / max(served, 1) * 1e3
                    results[f"{api}_{n_clients}_clients"] = figures
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


def call_space(client: Any, api: str, picture: str, seed: int) -> None:
    """One request, as an API user makes it (output files are downloaded)."""
    from gradio_client import handle_file

    if api == "generate":
        client.predict(SPACE_MODEL, 16, 1.0, seed, api_name="/generate")
    else:
        client.predict(SPACE_MODEL, None, handle_file(picture), seed, api_name="/reconstruct")


def client_process(url: str, api: str, picture: str, index: int, requests: int, barrier: Any, queue: Any) -> None:
    """A client in its own process: warm up, wait for the others, then time ``requests`` calls.

    The client is given one SSL context to reuse (``ssl_verify`` is passed to httpx as ``verify``): by default
    gradio_client opens a new httpx client for every HTTP request of a call (upload, event stream, each output
    file), and each builds an SSL context from the CA bundle, even for plain http: measured here, a client's CPU
    per /reconstruct call is 194 ms that way, 16 ms with one shared context. 16 such clients on this machine's two
    cores would time their own overhead, not the Space. Certificates are still verified, as with ssl_verify=True.
    """
    from gradio_client import Client

    client = Client(url, verbose=False, ssl_verify=ssl.create_default_context())  # type: ignore[arg-type]
    call_space(client, api, picture, 10_000 + index)  # warm-up: connection and API info
    barrier.wait()
    latencies, errors = [], []
    cpu = time.process_time()
    for i in range(requests):
        start = time.perf_counter()
        try:
            call_space(client, api, picture, index * requests + i)
            latencies.append(time.perf_counter() - start)
        except Exception as e:  # counted, not raised: the figure is how many failed
            errors.append(f"{type(e).__name__}: {e}"[:200])
    queue.put((latencies, errors, time.perf_counter(), time.process_time() - cpu))


def run_clients(url: str, api: str, picture: str, n_clients: int, requests: int) -> dict[str, Any]:
    """``n_clients`` processes, each calling ``api`` ``requests`` times, all at once."""
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(n_clients + 1), ctx.Queue()
    workers = [
        ctx.Process(target=client_process, args=(url, api, picture, i, requests, barrier, queue))
        for i in range(n_clients)
    ]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    outcomes = [queue.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    latencies = [t for lat, *_ in outcomes for t in lat]
    errors = [e for _, err, *_ in outcomes for e in err]
    wall = max(end for _, _, end, _ in outcomes) - start
    client_cpu = sum(cpu for *_, cpu in outcomes)
    stats = percentiles(latencies) if latencies else {"median_ms": math.nan, "p99_ms": math.nan, "runs": 0}
    return {**stats, "clients": n_clients, "errors": len(errors), "error_examples": errors[:3],
            "requests_per_second": len(latencies) / wall,
            "client_cpu_ms_per_request": client_cpu / max(len(latencies) + len(errors), 1) * 1e3}  # fmt: skip
