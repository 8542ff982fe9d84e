"""Hostile models: each one through ``vae_hub.from_pretrained`` and a running Space's ``/load_model``, as a local
folder and as a repo id served by a loopback Hub. Every case is refused with a CheckpointError naming the problem,
before anything large is allocated: the Space shows the message, keeps serving, and its memory stays flat."""

from __future__ import annotations

import json
import math
import os
import re
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from fake_hub import FakeHub
from helpers import ROOT, free_port

import vae_hub
from vae_hub import CheckpointError, ConvVAE, HierarchicalVAE, VariationalAutoencoder

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

LIMIT_MB = 256  # the Space's default limit; from_pretrained gets it through VAE_HUB_MAX_MODEL_MB below
TINY = {
    "mlp": lambda: VariationalAutoencoder(784, 16, 2),
    "conv": lambda: ConvVAE((1, 28, 28), latent_dim=2, base_channels=4, hidden_dim=8),
    "hvae": lambda: HierarchicalVAE((1, 28, 28), latent_dim=2, latent_channels=1, base_channels=4, hidden_dim=8),
}
WRONG_VALUES = {
    "object": {"a": 1},
    "list": [1, 2],
    "string": "12",
    "float": 12.5,
    "bool": True,
    "NaN": math.nan,
    "1e30": 1e30,
}
OUTSIDE = "outside"  # a folder next to the model folders, where links point


@dataclass
class Case:
    """A hostile model folder: how to write it, what the error must say, and whether a Hub repo can hold it."""

    write: object  # (folder: Path) -> None
    message: str  # a regular expression the error message must match
    on_hub: bool = True


def saved(kind: str, folder: Path) -> dict:
    """A valid tiny model of ``kind`` in ``folder``; returns its config."""
    TINY[kind]().save_pretrained(folder)
    return json.loads((folder / "config.json").read_text())


def with_config(kind: str, **changes: object):
    def write(folder: Path) -> None:
        config = saved(kind, folder) | changes
        (folder / "config.json").write_text(json.dumps(config))

    return write


def with_config_text(kind: str, text: str):
    def write(folder: Path) -> None:
        saved(kind, folder)
        (folder / "config.json").write_text(text)

    return write


def raw_safetensors(header: dict, data: bytes = b"", length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def with_weights(kind: str, make: object):
    """The valid config of ``kind`` with the weights file ``make(valid weights bytes)``."""

    def write(folder: Path) -> None:
        saved(kind, folder)
        path = folder / "model.safetensors"
        path.write_bytes(make(path.read_bytes()))  # type: ignore[operator]

    return write


def with_link(kind: str, filename: str):
    """A valid model whose ``filename`` is a link to a file outside its folder."""

    def write(folder: Path) -> None:
        saved(kind, folder)
        outside = folder.parent / OUTSIDE
        target = outside / filename if filename in ("model.safetensors", "config.json") else Path("/etc/passwd")
        if target.parent == outside:
            outside.mkdir(exist_ok=True)
            target.write_bytes((folder / filename).read_bytes())
        (folder / filename).unlink(missing_ok=True)
        (folder / filename).symlink_to(target)

    return write


def nested(depth: int) -> str:
    return '{"model_type": "VariationalAutoencoder", "hidden_dim": ' + "[" * depth + "]" * depth + "}"


def cases() -> dict[str, Case]:
    size = rf"over the size limit of {LIMIT_MB}\.0 MB"
    found = {
        # huge sizes, several magnitudes (the first is the 100-byte config)
        "mlp hidden_dim 3e6": Case(with_config("mlp", hidden_dim=3_000_000), size),
        "mlp hidden_dim 1e5": Case(with_config("mlp", hidden_dim=100_000), size),
        "mlp hidden_dim 1e7": Case(with_config("mlp", hidden_dim=10_000_000), size),
        "mlp input_dim 3x8192x8192": Case(with_config("mlp", input_dim=3 * 8192**2, image_shape=None), size),
        "mlp latent_dim 65536": Case(with_config("mlp", latent_dim=65536, hidden_dim=65536), size),
        "conv base_channels 2e3": Case(with_config("conv", base_channels=2000), size),
        "conv base_channels 2e4": Case(with_config("conv", base_channels=20_000), size),
        "conv image 3x8192x8192": Case(with_config("conv", image_shape=[3, 8192, 8192]), size),
        "conv hidden_dim 1e7": Case(with_config("conv", hidden_dim=10_000_000), size),
        "hvae base_channels 2e4": Case(with_config("hvae", base_channels=20_000), size),
        "hvae latent_channels 1024 at 3x4096x4096": Case(
            with_config("hvae", latent_channels=1024, image_shape=[3, 4096, 4096]), size
        ),
        "mlp VampPrior of 1e5 pseudo-inputs": Case(with_config("mlp", prior="vamp", pseudo_inputs=100_000), size),
        "mlp hidden_dim over any bound": Case(with_config("mlp", hidden_dim=10**30), r"hidden_dim must be an integer"),
        # a header that disagrees with the config
        "header of another shape": Case(
            with_weights("mlp", lambda _: _weights_of(VariationalAutoencoder(784, 17, 2))),
            r"does not match VariationalAutoencoder as configured: mis-shaped weights \[.*file \(17, 784\)",
        ),
        "header of another model": Case(
            with_weights("mlp", lambda _: _weights_of(TINY["conv"]())),
            r"does not match VariationalAutoencoder as configured: unexpected weights",
        ),
        "header claims a 1e18-element tensor": Case(
            with_weights(
                "mlp",
                lambda _: raw_safetensors(
                    {"fc_mu.bias": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 8]}}, b"\0" * 8
                ),
            ),  # fmt: skip
            r"tensor 'fc_mu.bias' of shape \[1000000000, 1000000000\] and dtype F32 does not fit its data_offsets",
        ),
        "header length 2**63": Case(
            with_weights("mlp", lambda _: raw_safetensors({}, length=2**63)), r"its header claims 9,223,372,036,"
        ),
        "header of integer tensors": Case(
            with_weights(
                "mlp",
                lambda _: raw_safetensors({"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
            ),  # fmt: skip
            r"tensor 'w' has dtype 'I64'",
        ),
        "header not JSON": Case(
            with_weights("mlp", lambda _: struct.pack("<Q", 4) + b"{{{{"), "header is not valid JSON"
        ),
        # the config's structure
        "deeply nested config": Case(with_config_text("mlp", nested(30_000)), "nested too deeply"),
        "config over 64 KB": Case(
            with_config_text("mlp", nested(100_000)),
            r"config.json of .* is [\d,]+ bytes, more than the 65,536 bytes it may have",
        ),
        "model_type an object": Case(
            with_config("mlp", model_type={"a": 1}), r"is a \{'a': 1\}, which vae-hub does not"
        ),
        "model_type a list": Case(with_config("mlp", model_type=["VariationalAutoencoder"]), "does not know"),
        "config a list": Case(with_config_text("mlp", "[1, 2]"), "must hold a JSON object, got list"),
        # links out of the folder (a Hub repo holds files, not links)
        "README.md links to /etc/passwd": Case(with_link("mlp", "README.md"), "README.md .* is a link", on_hub=False),
        "metrics.json links to /etc/passwd": Case(
            with_link("mlp", "metrics.json"), "metrics.json .* is a link", on_hub=False
        ),
        "weights link outside": Case(with_link("mlp", "model.safetensors"), "model.safetensors .* link", on_hub=False),
        "config links outside": Case(with_link("conv", "config.json"), "config.json .* is a link", on_hub=False),
    }
    # wrong types for every config field of both models
    for kind, make in TINY.items():
        cls = type(make())
        for field in cls.config_rules:
            for label, value in WRONG_VALUES.items():
                valid = (field == "gaussian_std" and label == "float") or (
                    field in ("learn_std", "deterministic") and label == "bool"
                )
                if not valid:
                    found[f"{kind} {field} {label}"] = Case(with_config(kind, **{field: value}), rf"{field} must be")
    return found


CASES = cases()


def _weights_of(model: torch.nn.Module) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def repo_id(case: str) -> str:
    return "hostile/case-" + str(sorted(CASES).index(case))


# --- fixtures: the folders, the loopback Hub holding the same files, the running Space ------------------------
@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    made = {}
    for i, (name, case) in enumerate(sorted(CASES.items())):
        folder = root / f"case-{i}" / "model"  # a parent of its own, so that links out of it stay in the test
        folder.parent.mkdir()
        case.write(folder)  # type: ignore[operator]
        made[name] = folder
    return made


@pytest.fixture(scope="module")
def hub(folders):
    with FakeHub() as hub:
        for name, case in CASES.items():
            if case.on_hub:
                repo = repo_id(name)
                hub.repos[repo] = {p.name: p.read_bytes() for p in folders[name].iterdir() if p.is_file()}
                hub.shas[repo] = "1" * 40
        fresh = TINY["conv"]()
        hub.repos["alice/fresh"] = {"config.json": json.dumps({**fresh._hub_mixin_config, "model_type": "ConvVAE"})
                                    .encode(), "model.safetensors": _weights_of(fresh)}  # fmt: skip
        hub.shas["alice/fresh"] = "2" * 40
        hub.slow_files["model.safetensors"] = 0.0
        yield hub


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@dataclass
class Space:
    client: Client
    process: subprocess.Popen
    log: Path
    start_rss_mb: float


@pytest.fixture(scope="module")
def space(hub, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("space")
    model = tmp / "tiny"
    saved("mlp", model)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_HOME", "VAE_HUB_MAX_MODEL_MB")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp / "hf"), "HF_TOKEN": "hf_fake", "HF_HUB_DISABLE_XET": "1",
            "GRADIO_ANALYTICS_ENABLED": "False", "VAE_HUB_CONCURRENCY": "16"}  # fmt: skip
    log = tmp / "space.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vae_hub", "space", str(model), "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the Space did not start"
            time.sleep(0.3)
    client = Client(url, verbose=False)
    client.predict("tiny", 4, 1.0, 0, api_name="/generate")  # warm up before measuring memory
    yield Space(client, process, log, rss_mb(process.pid))
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def hub_loads(hub, tmp_path_factory) -> dict[str, list[str]]:
    """from_pretrained of every case's repo id, in a process whose Hub client points at the loopback Hub."""
    script = (
        "import json, sys, vae_hub\n"
        "out = {}\n"
        "for repo in sys.argv[1:]:\n"
        "    try:\n"
        "        vae_hub.from_pretrained(repo)\n"
        "        out[repo] = ['loaded', '']\n"
        "    except Exception as e:\n"
        "        out[repo] = [' '.join(c.__name__ for c in type(e).__mro__), str(e)]\n"
        "print(json.dumps(out))\n"
    )
    tmp = tmp_path_factory.mktemp("hub-loads")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_HOME")}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp), "HF_TOKEN": "hf_fake", "VAE_HUB_MAX_MODEL_MB": str(LIMIT_MB)}
    repos = [repo_id(name) for name, case in CASES.items() if case.on_hub]
    result = subprocess.run([sys.executable, "-c", script, *repos], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


# --- every case, every way in -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_from_pretrained_refuses_a_hostile_folder(folders, monkeypatch, case):
    monkeypatch.setenv("VAE_HUB_MAX_MODEL_MB", str(LIMIT_MB))
    with pytest.raises(CheckpointError, match=CASES[case].message):
        vae_hub.from_pretrained(folders[case])


@pytest.mark.parametrize("case", sorted(name for name, case in CASES.items() if case.on_hub))
def test_from_pretrained_refuses_a_hostile_hub_repo(hub_loads, case):
    kind, message = hub_loads[repo_id(case)]
    assert "CheckpointError" in kind.split(), (kind, message)
    assert re.search(CASES[case].message, message), message


def space_refuses(space: Space, name: str, message: str) -> str:
    with pytest.raises(AppError) as error:
        space.client.predict(name, api_name="/load_model")
    text = str(error.value)
    assert re.search(message, text), text
    for leak in ("Traceback", 'File "', "c10::", "at::", str(ROOT), "/hf/hub/"):
        assert leak not in text, text
    return text


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_space_refuses_a_hostile_model_and_keeps_serving(space, folders, case):
    space_refuses(space, str(folders[case]), CASES[case].message)
    if CASES[case].on_hub:
        space_refuses(space, repo_id(case), CASES[case].message)
    grid = space.client.predict("tiny", 4, 1.0, 0, api_name="/generate")
    assert Path(grid).stat().st_size > 0


def test_the_hub_reported_size_refuses_a_file_before_it_is_downloaded(space, hub):
    repo = repo_id("config over 64 KB")
    space_refuses(space, repo, r"is [\d,]+ bytes, more than the 65,536 bytes it may have")
    asked = [r for r in hub.requests if f"/{repo}/" in r]
    assert asked and not any(r.startswith("GET") for r in asked), asked  # HEAD requests only


# --- names and devices ------------------------------------------------------------------------------------------
NAMES = {
    "300 characters": ("a" * 300, r"'a{99}\.\.\. \(302 characters\) is neither an existing local folder nor"),
    "1 MB": ("b" * 2**20, r"the model name is 1,048,576 characters long"),
    "a 300-character path": ("/tmp/" + "c" * 300, r"local folder /tmp/c+\.\.\. \(305 characters\) does not exist"),
}


@pytest.mark.parametrize("case", sorted(NAMES))
def test_absurd_names_are_refused_by_name(space, case):
    name, message = NAMES[case]
    with pytest.raises(CheckpointError, match=message) as error:
        vae_hub.from_pretrained(name)
    assert len(str(error.value)) < 500
    text = space_refuses(space, name, message)
    assert len(text) < 1000


@pytest.mark.parametrize(
    "map_location, message",
    [
        ("garbage", r"map_location 'garbage' is not a device; expected e.g. 'cpu'"),
        (42.5, r"map_location 42.5 is not a device"),
        ("meta", "map_location 'meta' holds no data"),
        pytest.param(
            "cuda", "map_location 'cuda' cannot be used on this machine",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)  # fmt: skip
def test_a_bad_map_location_is_named_as_such(tmp_path, map_location, message):
    saved("mlp", tmp_path / "m")
    with pytest.raises(CheckpointError, match=message):
        vae_hub.from_pretrained(tmp_path / "m", map_location=map_location)


# --- one load per name ------------------------------------------------------------------------------------------
def test_sixteen_concurrent_loads_of_a_new_model_load_it_once(space, hub):
    hub.slow_files["model.safetensors"] = 1.0  # the download takes a second: every request arrives during it
    try:
        jobs = [space.client.submit("alice/fresh", api_name="/load_model") for _ in range(16)]
        names = [job.result(timeout=120)[0] for job in jobs]
    finally:
        hub.slow_files["model.safetensors"] = 0.0
    assert names == ["alice/fresh"] * 16
    loads = [line for line in space.log.read_text().splitlines() if "loaded model 'alice/fresh'" in line]
    assert len(loads) == 1, loads
    downloads = [r for r in hub.requests if r == "GET /alice/fresh/resolve/main/model.safetensors"]
    assert len(downloads) == 1, downloads


def test_a_rejected_model_logs_one_line_and_no_traceback(space, folders):
    log = space.log.read_text()
    assert "Traceback" not in log
    rejected = [line for line in log.splitlines() if "rejected /load_model: could not load" in line]
    assert len(rejected) >= len(CASES)  # one line per refusal
    assert all(len(line) < 700 for line in rejected)


def test_the_space_memory_grew_by_less_than_300_mb_over_the_file(space):
    # runs last in this file (pytest keeps the order of definition): every case above has been tried by now
    grown = rss_mb(space.process.pid) - space.start_rss_mb
    print(f"Space RSS grew by {grown:.1f} MB over {len(CASES)} hostile models")
    assert grown < 300, f"the Space's resident memory grew by {grown:.0f} MB"
