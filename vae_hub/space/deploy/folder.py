"""A self-contained Hugging Face Space folder: the app, the vae_hub package, the models, requirements and card.

The folder runs on Spaces (or anywhere) with nothing but ``pip install -r requirements.txt``: the ``vae_hub``
package travels inside it as source, so the Space does not depend on this repository or a release being reachable.
Models are either copied into ``models/`` (local folders, checked by loading them) or named by Hub repo id and
downloaded by the Space when it starts. ``models.json`` says which; ``app.py`` reads it with ``read_models``.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from packaging.requirements import Requirement

from ...errors import CheckpointError, ModelLoadError, SpaceFolderError
from ...hub.files import CONFIG_NAME, WEIGHTS_NAME, check_links, looks_like_local_path
from ...hub.save_load import load_model
from ...limits import max_model_bytes
from ..lab.models import LAB_JSON, read_lab
from ..model_store import SPACE_MAX_MODEL_MB, find_models
from .card import space_card

MODELS_JSON = "models.json"
MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME, "README.md", "metrics.json", "samples.png", "reconstructions.png",
               "training_curves.png")  # fmt: skip
MAX_MODELS_JSON_BYTES = 64 * 1024

APP_PY = '''"""A vae-hub Space, written by `vae-hub space deploy`: the page is vae_hub.space, models.json its models
(models/lab.json, when there is one, the twins of the lab's tabs)."""

from pathlib import Path

from vae_hub import space

HERE = Path(__file__).resolve().parent
demo = space.build_demo(space.read_models(HERE), lab=space.read_lab(HERE / "models"))

if __name__ == "__main__":
    space.launch(demo)
'''


@dataclass(frozen=True)
class SpaceFolder:
    """What ``write_space_folder`` wrote: the folder, the models copied in, the repo ids referenced, and
    every file (relative path, bytes), sorted."""

    path: Path
    copied: dict[str, Path]
    referenced: dict[str, str]
    files: list[tuple[str, int]]


def requirements() -> list[str]:
    """What the Space installs: vae-hub's own dependencies, its space extra, and Gradio (with MCP) as tested."""
    gradio_version = importlib.metadata.version("gradio")
    lines = []
    for spec in importlib.metadata.requires("vae-hub") or []:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": "space"}):
            continue  # another extra (test, ...)
        req.marker = None
        if req.name != "gradio":
            lines.append(str(req))
    return [*lines, f"gradio[mcp]=={gradio_version}"]


def split_models(found: dict[str, str | Path]) -> tuple[dict[str, Path], dict[str, str]]:
    """``find_models``' answer split: local model folders to copy, and Hub repo ids to reference, by name shown."""
    copied: dict[str, Path] = {}
    referenced: dict[str, str] = {}
    for name, source in found.items():
        if isinstance(source, Path) or looks_like_local_path(str(source)) or Path(source).exists():
            folder = Path(source)
            if not (folder / CONFIG_NAME).is_file():
                raise SpaceFolderError(f"{source} is not a model folder (no {CONFIG_NAME} in it) nor a Hub repo id")
            copied[name] = folder
        else:
            try:
                validate_repo_id(str(source))
            except HFValidationError as e:
                raise SpaceFolderError(
                    f"{source!r} is neither a model folder nor a Hub repo id (user/name): {e}"
                ) from None
            referenced[name] = str(source)
    return copied, referenced


def copy_model(folder: Path, target: Path, name: str) -> None:
    """Copy a model folder's files (config, weights, card, metrics, pictures), after loading it as the Space would."""
    try:
        check_links(folder, name)
        load_model(folder, max_bytes=max_model_bytes(SPACE_MAX_MODEL_MB))
    except CheckpointError as e:
        raise SpaceFolderError(f"model {name} ({folder}) cannot go into the Space: {e}") from e
    target.mkdir(parents=True)
    for filename in MODEL_FILES:
        if (folder / filename).is_file():
            shutil.copyfile(folder / filename, target / filename)


def copy_lab(models: list[str], target: Path, copied: set[str]) -> None:
    """The first ``lab.json`` among the model folders goes with them, if every twin it names was copied."""
    for source in models:
        try:
            lab = read_lab(source) if Path(source).is_dir() else None
        except ModelLoadError as e:
            raise SpaceFolderError(str(e)) from None
        if lab is None:
            continue
        missing = sorted(set(lab.sources()) - copied)
        if missing:
            raise SpaceFolderError(f"{source}/{LAB_JSON} names models that are not in the Space: {', '.join(missing)}")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(source) / LAB_JSON, target / LAB_JSON)
        return


def write_space_folder(out: str | Path, space_id: str, models: list[str], title: str | None = None) -> SpaceFolder:
    """Write the Space for ``models`` (folders or repo ids; the first is shown first) into the new folder ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SpaceFolderError(f"{out} is not empty; give a new or empty folder to write the Space into")
    if not models:
        raise SpaceFolderError("name at least one model for the Space (--model FOLDER or --model USER/REPO)")
    found = find_models(models)  # name -> folder or repo id, in the order shown
    copied, referenced = split_models(found)
    out.mkdir(parents=True, exist_ok=True)
    try:
        for name, folder in copied.items():
            copy_model(folder, out / "models" / name, name)
        copy_lab(models, out / "models", set(copied))
        entries = {n: {"folder": f"models/{n}"} if n in copied else {"repo": referenced[n]} for n in found}
        (out / MODELS_JSON).write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        (out / "app.py").write_text(APP_PY, encoding="utf-8")
        (out / "requirements.txt").write_text(
            "# vae-hub's dependencies; vae_hub itself is the folder next to app.py\n"
            + "\n".join(requirements())
            + "\n",
            encoding="utf-8",
        )
        package = Path(__file__).resolve().parents[2]  # vae_hub/
        shutil.copytree(package, out / "vae_hub", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        card = space_card(title or space_id.split("/")[-1], space_id, importlib.metadata.version("gradio"),
                          list(referenced.values()), list(copied))  # fmt: skip
        (out / "README.md").write_text(card, encoding="utf-8")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half-written Space folder
        raise
    files = sorted((str(p.relative_to(out)), p.stat().st_size) for p in out.rglob("*") if p.is_file())
    return SpaceFolder(out, copied, referenced, files)


def read_models(folder: str | Path) -> dict[str, str | Path]:
    """The models a Space folder's ``models.json`` names: name -> model folder inside it, or Hub repo id."""
    folder = Path(folder)
    path = folder / MODELS_JSON
    if not path.is_file():
        raise SpaceFolderError(f"{path} is missing: it names the Space's models (write it with vae-hub space deploy)")
    if path.stat().st_size > MAX_MODELS_JSON_BYTES:
        raise SpaceFolderError(f"{path} is larger than {MAX_MODELS_JSON_BYTES:,} bytes")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:
        raise SpaceFolderError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(entries, dict) or not entries:
        raise SpaceFolderError(f"{path} must map model names to {{'folder': ...}} or {{'repo': ...}}")
    models: dict[str, str | Path] = {}
    for name, entry in entries.items():
        if isinstance(entry, dict) and isinstance(entry.get("folder"), str):
            inside = (folder / entry["folder"]).resolve()
            if not inside.is_relative_to(folder.resolve()):
                raise SpaceFolderError(f"{path}: the folder of model {name!r} is outside the Space folder")
            models[name] = inside
        elif isinstance(entry, dict) and isinstance(entry.get("repo"), str):
            models[name] = entry["repo"]
        else:
            raise SpaceFolderError(f"{path}: model {name!r} must be {{'folder': 'models/...'}} or {{'repo': 'u/r'}}")
    return models
