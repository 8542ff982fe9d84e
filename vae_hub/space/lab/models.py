"""Which models the lab's tabs compare: ``lab.json`` beside the model folders names them.

    {"autoencoder": "ae-2d-fashion-mnist", "vae": "mlp-2d-fashion-mnist",
     "betas": {"0.1": "beta-0.1-fashion-mnist", "1": "beta-1-fashion-mnist", ...},
     "remedies": {"textbook": "mlp-fashion-mnist", "hierarchical": "hvae-fashion-mnist",
                  "autoregressive": "hvae-pixel-fashion-mnist", "vq": "vqvae-fashion-mnist",
                  "vamp": "vamp-2d-fashion-mnist"}}

``"remedies"`` is optional: without it there is no Remedies tab.

Each name is a model folder next to ``lab.json`` (or a Hub repo id). The twins are loadable by name in every tab;
the model list offers only the others (and the VAE twin).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import ModelLoadError
from ...hub.files import CONFIG_NAME
from .remedies import RemedyModels

LAB_JSON = "lab.json"
MAX_LAB_JSON_BYTES = 16 * 1024


@dataclass(frozen=True)
class LabModels:
    """The lab's twins, as (name, folder or repo id): a 2-D autoencoder and its VAE twin, and VAEs trained with
    increasing beta (beta as text -> model), in that order."""

    autoencoder: tuple[str, str | Path]
    vae: tuple[str, str | Path]
    betas: dict[str, tuple[str, str | Path]]
    remedies: RemedyModels | None = None

    def sources(self) -> dict[str, str | Path]:
        remedies = self.remedies.sources() if self.remedies else {}
        return {**dict([self.autoencoder, self.vae, *self.betas.values()]), **remedies}

    def lab_only(self) -> set[str]:
        """The twins that only the lab shows (the VAE twin is also an ordinary model; the Space's pages take VAEs,
        so the VQ-VAE is the Remedies tab's only)."""
        vq = {self.remedies.shown["vq"][0]} if self.remedies else set()
        return {self.autoencoder[0], *(name for name, _ in self.betas.values()), *vq}


def read_lab(folder: str | Path) -> LabModels | None:
    """The lab that ``folder/lab.json`` describes, or None when there is none; a clear error when it is wrong."""
    folder = Path(folder)
    path = folder / LAB_JSON
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_LAB_JSON_BYTES:
        raise ModelLoadError(f"{path} is larger than {MAX_LAB_JSON_BYTES:,} bytes")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        remedies = spec.get("remedies")
        if remedies is not None and set(remedies) != set(RemedyModels.roles()):
            raise TypeError
        names = [spec["autoencoder"], spec["vae"], *spec["betas"].values(), *(remedies or {}).values()]
        if not all(isinstance(n, str) and n for n in names) or not all(isinstance(b, str) for b in spec["betas"]):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise ModelLoadError(
            f"{path} must be {{'autoencoder': NAME, 'vae': NAME, 'betas': {{'0.1': NAME, ...}}}} (model names), "
            f"with optionally 'remedies': {{{', '.join(repr(r) + ': NAME' for r in RemedyModels.roles())}}}"
        ) from None

    def source(name: str) -> tuple[str, str | Path]:
        inside = (folder / name).resolve()
        if (inside / CONFIG_NAME).is_file() and inside.is_relative_to(folder.resolve()):
            return name, inside
        if "/" in name and not name.startswith((".", "/")):
            return name, name  # a Hub repo id
        raise ModelLoadError(f"{path} names {name!r}, which is not a model folder in {folder}")

    shown = {role: source(remedies[role]) for role in RemedyModels.roles()[:-1]} if remedies else {}
    return LabModels(source(spec["autoencoder"]), source(spec["vae"]),
                     {beta: source(name) for beta, name in spec["betas"].items()},
                     RemedyModels(shown, source(remedies["vamp"])) if remedies else None)  # fmt: skip
