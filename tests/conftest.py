"""Test set-up: the Hub client is pointed at a closed loopback port before anything imports it."""

import ast
import inspect
import os
import re
import tempfile
import textwrap
from pathlib import Path

_HF_HOME = tempfile.mkdtemp(prefix="vae-hub-test-hf-")
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no test reaches the real Hub
os.environ["HF_HOME"] = _HF_HOME
os.environ.setdefault("HF_TOKEN", "hf_test_token")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def binary_batch() -> torch.Tensor:
    """A small batch of binary 1x28x28 'images'."""
    return (torch.rand(8, 1, 28, 28) > 0.5).float()


@pytest.fixture
def fresh_accelerator_state():
    """Accelerate keeps one global state per process: each test that builds a Trainer starts and ends without one."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture
def mnist_dir(tmp_path):
    """A data folder holding a tiny MNIST in torchvision's layout (``mnist_dir / "MNIST" / "raw"``): 256 training
    and 64 test images of ten blob-like classes (tests/idx_data.py)."""
    from idx_data import write_idx

    write_idx(tmp_path / "data" / "MNIST" / "raw")
    return tmp_path / "data"


# --- the slow marker ---------------------------------------------------------------------------------------------
# A test is slow when it, or a fixture it uses, starts another process, a server or a browser: `pytest -m "not slow"`
# runs the rest in well under a minute. A test may also carry @pytest.mark.slow by hand.
TESTS = Path(__file__).resolve().parent
STARTS_SOMETHING = re.compile(
    r"subprocess\.|sys\.executable|Popen|\.launch\(|\blaunch\(|sync_playwright|chromium|serve_hub|FakeHub|\bhub_env\b"
)


def _sources(func, seen: set) -> str:
    """The source of ``func`` and of every function of the tests that it calls by name, however deep."""
    if func is None or func in seen or not inspect.isfunction(func):
        return ""
    seen.add(func)
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError):
        return ""
    for node in ast.walk(ast.parse(textwrap.dedent(text))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called = func.__globals__.get(node.func.id)
            if inspect.isfunction(called) and TESTS in Path(inspect.getsourcefile(called) or "/").resolve().parents:
                text += _sources(called, seen)
    return text


def _starts_something(item: pytest.Item) -> bool:
    seen: set = set()
    text = _sources(getattr(item, "function", None), seen)
    for defs in item._fixtureinfo.name2fixturedefs.values():  # every fixture the test needs, however indirectly
        for fixture in defs:
            text += _sources(fixture.func, seen)
    return bool(STARTS_SOMETHING.search(text))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _starts_something(item):
            item.add_marker(pytest.mark.slow)
