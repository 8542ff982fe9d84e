"""Test set-up: the Hub client is pointed at a closed loopback port before anything imports it."""

import os
import tempfile

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
