"""Where the Space's CPU goes under 16 clients: py-spy samples the server, this groups the samples.

Usage: pip install py-spy; python benchmarks/space_profile.py [reconstruct|generate] [space/models] [seconds]

Starts ``vae-hub space``, records it with ``py-spy record --format raw`` while 16 client processes call
/reconstruct with an uploaded picture, or /generate (the benchmark's clients), and prints the share of the busy
samples in each part: the model's work inside the handler, Gradio's pre- and post-processing, its HTTP routes, the
queue.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vae_hub.cli.benchmark.sections import SPACE_MODEL, free_port, run_clients, wait_until_up

# first match wins: a sample's whole stack is searched for these names
PARTS = [
    ("idle (waiting threads)", ["Condition.wait", "EpollSelector.select", "block_thread", "Event.wait"]),
    ("model: the ELBO's draws (posterior_estimate)", ["posterior_estimate"]),
    ("model: sampling (generate)", ["Features.generate"]),
    ("model and handler: the rest", ["user_errors.<locals>.wrapper"]),
    ("Gradio: output pictures and files (postprocess)", ["postprocess_data", "postprocess (gradio"]),
    ("Gradio: inputs (preprocess)", ["preprocess_data"]),
    ("Gradio: the upload route", ["upload_fn"]),
    ("Gradio: file downloads", ["file (gradio/routes", "FileResponse", "stream_file"]),
    ("Gradio: queue join and event stream", ["queue_join", "sse_stream", "queue_data"]),
    ("Gradio: the queue", ["process_events", "Queue."]),
    ("HTTP server (uvicorn, starlette)", ["uvicorn", "starlette", "h11"]),
]


def parts(raw: Path) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        name = next((part for part, keys in PARTS if any(k in stack for k in keys)), "other")
        counts[name] += int(n)
    return dict(counts)


def main(api: str = "reconstruct", models: str = "space/models", seconds: str = "20") -> None:
    if shutil.which("py-spy") is None:
        sys.exit("needs py-spy: pip install py-spy")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "VAE_HUB_MODEL": SPACE_MODEL}
    space = subprocess.Popen([sys.executable, "-m", "vae_hub", "space", models, "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_until_up(url, space)
            picture, raw = Path(tmp) / "digit.png", Path(tmp) / "profile.txt"
            stroke = np.zeros((28, 28), np.uint8)
            stroke[6:22, 12:16] = 255
            Image.fromarray(stroke).save(picture)
            spy = subprocess.Popen(["py-spy", "record", "-p", str(space.pid), "-o", str(raw), "-f", "raw", "-r", "200",
                                    "-d", str(int(float(seconds)) + 8), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            figures = run_clients(url, [(api, 16)], str(picture), float(seconds))[api]
            spy.wait()
        finally:
            space.terminate()
            space.wait()
        counts = parts(raw)
    busy = sum(counts.values()) - counts.get(PARTS[0][0], 0)
    print(f"16 clients on /{api} for {seconds} s: {figures['runs']} requests, p99 {figures['p99_ms']:.0f} ms")
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if name != PARTS[0][0]:
            print(f"{n / busy:6.1%}  {name}")


if __name__ == "__main__":
    main(*sys.argv[1:])
