"""One API user of the Space, for the benchmark's load test: run as a script, it imports only gradio_client.

Usage: python space_client.py URL API PICTURE MODEL FIRST_SEED SECONDS

API is ``generate``, ``reconstruct`` (PICTURE uploaded each time) or ``train_live`` (a visitor who trains the live
model again and again, each time 30 epochs within a 40-s budget). It makes one untimed call (connection, API info;
none for ``train_live``), prints ``ready``, waits for a line on stdin, then calls for SECONDS and prints one JSON
line: latencies (s), errors, the start and end times (``time.perf_counter``, comparable between processes on Linux),
its own CPU time, and for ``train_live`` what each training's last message said.

Run as a file, not as a module of vae_hub, so that a client is what an API user runs: Python and gradio_client,
without torch and vae-hub loaded. The benchmark's clients share the Space's two cores; when they imported torch
(multiprocessing started them from vae-hub's benchmark module), each client's full garbage collections (200,000
objects, ~70 ms) came due in the same second in all sixteen, since they run in step, and that stall was the
Space's /reconstruct p99 (1.28 s; 0.77 s with these clients).
"""

from __future__ import annotations

import json
import ssl
import sys
import time

LIVE_EPOCHS, LIVE_BUDGET_S = 30, 40  # the most epochs the page offers, within a budget they need far less than


def call(client: object, api: str, picture: str, model: str, seed: int) -> str:
    """One request, as an API user makes it (output files are downloaded); the status text of a live training."""
    from gradio_client import handle_file

    if api == "generate":
        client.predict(model, 16, 1.0, seed, api_name="/generate")  # type: ignore[attr-defined]
    elif api == "reconstruct":
        client.predict(model, None, handle_file(picture), seed, api_name="/reconstruct")  # type: ignore[attr-defined]
    else:
        outputs = client.predict(2, 1.0, LIVE_EPOCHS, "bernoulli", LIVE_BUDGET_S, api_name="/train_live")  # type: ignore[attr-defined]
        return str(outputs[0])
    return ""


def main(url: str, api: str, picture: str, model: str, first_seed: str, seconds: str) -> None:
    from gradio_client import Client

    # One SSL context, reused (ssl_verify is passed to httpx as verify): by default gradio_client makes a new httpx
    # client, hence a new SSL context from the CA bundle, for every HTTP request of a call, even for plain http
    # (measured: 194 ms of the client's CPU per /reconstruct, 16 ms with one context). Certificates are still
    # verified, as with ssl_verify=True.
    # analytics_enabled=False: no telemetry call to the Hub (gradio_client ignores GRADIO_ANALYTICS_ENABLED unless
    # this is left to None); nothing in the benchmark uses the network
    context = ssl.create_default_context()
    client = Client(url, verbose=False, ssl_verify=context, analytics_enabled=False)  # type: ignore[arg-type]
    seed = int(first_seed)
    if api != "train_live":
        call(client, api, picture, model, seed + 1_000_000)  # warm-up: connection, API info
    print("ready", flush=True)
    sys.stdin.readline()
    latencies, errors, messages = [], [], []
    cpu, begun = time.process_time(), time.perf_counter()
    i = 0
    while time.perf_counter() - begun < float(seconds):
        start = time.perf_counter()
        try:
            messages.append(call(client, api, picture, model, seed + i))
            latencies.append(time.perf_counter() - start)
        except Exception as e:  # counted, not raised: the figure is how many failed
            errors.append(f"{type(e).__name__}: {e}"[:200])
        i += 1
    end = time.perf_counter()
    figures = {"latencies": latencies, "errors": errors, "start": begun, "end": end, "cpu": time.process_time() - cpu}
    if api == "train_live":
        figures |= {"messages": messages, "budget_s": LIVE_BUDGET_S, "epochs": LIVE_EPOCHS}
    print(json.dumps(figures))
    client.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
