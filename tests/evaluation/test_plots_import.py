"""matplotlib is imported beside the training loop, so drawing the curves at the end does not wait for it."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
from vae_hub.evaluation.plots import import_matplotlib_in_the_background
before = "matplotlib.figure" in sys.modules
thread = import_matplotlib_in_the_background()
thread.join(timeout=120)
print(before, thread.daemon, thread.is_alive(), "matplotlib.backends.backend_agg" in sys.modules)
"""


def test_matplotlib_is_imported_by_a_daemon_thread():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "False", "True"]
