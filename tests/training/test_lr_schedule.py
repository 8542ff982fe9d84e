"""The learning-rate schedule: a linear warm-up, then constant or a cosine decay to 0."""

import math

import pytest

from vae_hub.training.trainer import lr_factor


def test_cosine_decays_from_1_to_0():
    assert lr_factor(0, 100, 0, "cosine") == 1.0
    assert lr_factor(50, 100, 0, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, 0, "cosine") == pytest.approx(0.0)


def test_warm_up_ramps_linearly_then_the_schedule_runs_over_the_remaining_steps():
    assert [lr_factor(s, 100, 10, "cosine") for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_factor(10, 100, 10, "cosine") == 1.0
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert [lr_factor(s, 100, 4, "constant") for s in (0, 3, 50)] == [0.25, 1.0, 1.0]
