"""vae_hub.training.optim: the updates and state layout of torch.optim.Adam and LambdaLR, without importing dynamo."""

from __future__ import annotations

import pytest
import torch

from vae_hub.training.optim import Adam, LRSchedule
from vae_hub.training.trainer import lr_factor


def trajectories(fused: bool, steps: int = 20):
    torch.manual_seed(0)
    ours_model = torch.nn.Linear(7, 5)
    theirs_model = torch.nn.Linear(7, 5)
    theirs_model.load_state_dict(ours_model.state_dict())
    ours = Adam(ours_model.parameters(), lr=3e-3)
    ours.fused = fused
    theirs = torch.optim.Adam(theirs_model.parameters(), lr=3e-3)
    for _ in range(steps):
        x = torch.randn(16, 7)
        for model, opt in ((ours_model, ours), (theirs_model, theirs)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    return ours_model, theirs_model, ours, theirs


@pytest.mark.parametrize("fused", [True, False])
def test_adam_updates_as_torch_optim_adam_does(fused):
    ours_model, theirs_model, _, _ = trajectories(fused)
    for a, b in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_adam_state_dicts_load_into_each_other():
    ours_model, theirs_model, ours, theirs = trajectories(True, steps=3)
    mine, torchs = ours.state_dict(), theirs.state_dict()
    assert mine["state"].keys() == torchs["state"].keys()
    for i, s in mine["state"].items():
        assert s.keys() == torchs["state"][i].keys()
        torch.testing.assert_close(s["exp_avg"], torchs["state"][i]["exp_avg"])
    fresh = Adam(torch.nn.Linear(7, 5).parameters(), lr=1.0)
    fresh.load_state_dict(torchs)
    assert fresh.param_groups[0]["lr"] == 3e-3 and float(fresh.state_dict()["state"][0]["step"]) == 3
    theirs.load_state_dict(mine)  # and back
    with pytest.raises(ValueError, match="parameter groups of sizes"):
        Adam(torch.nn.Linear(7, 5, bias=False).parameters(), lr=1.0).load_state_dict(torchs)


def test_the_schedule_follows_lambdalr():
    factor = lambda step: lr_factor(step, total=30, warmup=5, schedule="cosine")  # noqa: E731
    p = [torch.nn.Parameter(torch.zeros(1))]
    ours, theirs = Adam(p, lr=0.1), torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    mine, reference = LRSchedule(ours, factor), torch.optim.lr_scheduler.LambdaLR(theirs, factor)
    for _ in range(30):
        assert mine.get_last_lr() == pytest.approx(reference.get_last_lr())
        mine.step()
        theirs.step()  # no gradients: nothing moves, but LambdaLR sees the order it expects
        reference.step()
    restored = LRSchedule(Adam(p, lr=0.1), factor)
    restored.load_state_dict(reference.state_dict())
    assert restored.last_epoch == 30 and restored.get_last_lr() == pytest.approx(reference.get_last_lr())
