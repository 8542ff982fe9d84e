"""Every relative link and image in the README, the Space's README, the changelog and the docs points at a file
that exists; the CLI reference covers every command."""

import re
from pathlib import Path

import nbformat
import pytest
from helpers import ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def documents() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md")) + sorted((ROOT / "docs").rglob("*.ipynb"))
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "space" / "README.md", *docs]


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        return "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    text = path.read_text()
    return re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    broken = []
    for target in LINK.findall(markdown_of(path)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        file = target.split("#")[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"


def test_the_link_pattern_finds_links_and_images():
    found = LINK.findall('see [a](docs/a.md#x), ![b](pics/b.png "title") and [c](https://example.com)')
    assert found == ["docs/a.md#x", "pics/b.png", "https://example.com"]


def test_the_cli_reference_has_every_command(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "_hooks"))
    from cli_reference import cli_reference

    from vae_hub.cli import COMMANDS
    from vae_hub.cli.space import SUBCOMMANDS

    page = cli_reference()
    for name in COMMANDS:
        assert f"## `vae-hub {name}`" in page
    for name in SUBCOMMANDS:
        assert f"## `vae-hub space {name}`" in page
    assert "--res-blocks N" in page and "--dry-run" in page  # the flags, as --help prints them
