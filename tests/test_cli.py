"""The vae-hub command: every subcommand's --help, and training flags that come from TrainConfig's fields."""

from __future__ import annotations

from dataclasses import fields

import pytest

from vae_hub.cli import COMMANDS, main
from vae_hub.config import TrainConfig


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert f"usage: vae-hub {command}" in capsys.readouterr().out


def test_train_flags_come_from_the_config_fields(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in fields(TrainConfig):
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        assert flag in text, flag
    assert "--model {mlp,conv}" in text and "(default: mlp)" in text and "(default: 0.001)" in text
    assert "--mixed-precision {no,fp16,bf16}" in text


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2 and "required: COMMAND" in capsys.readouterr().err
