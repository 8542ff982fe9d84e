"""One module of vae_hub as it was at an earlier commit, loaded beside today's, for A/B timings in one process.

    from previous import module_at
    old_metrics = module_at("HEAD~1", "vae_hub.evaluation.metrics")

Only that file comes from the commit: its imports of the rest of vae_hub resolve to today's package, so an A/B
measures the change to that one file. Interleave the two in one process (this host's speed drifts by up to 30%
within minutes) and compare the fastest rounds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def module_at(rev: str, name: str) -> ModuleType:
    """The module ``name`` (e.g. ``vae_hub.evaluation.metrics``) as the file was at git revision ``rev``."""
    path = name.replace(".", "/") + ".py"
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"git show {rev}:{path} failed: {shown.stderr.strip()}")
    alias = f"{name}@{rev}"
    module = ModuleType(alias)
    module.__package__ = name.rpartition(".")[0]  # its relative imports resolve to today's package
    module.__file__ = f"{path}@{rev}"
    sys.modules[alias] = module  # dataclasses look their module up there
    exec(compile(shown.stdout, module.__file__, "exec"), module.__dict__)
    return module
