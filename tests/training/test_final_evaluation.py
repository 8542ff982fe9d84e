"""The model folder's test metrics: evaluated once more at the end only when there is an NLL to add."""

from __future__ import annotations

import json

import pytest

from vae_hub.training import run_folder as model_folder
from vae_hub.training import trainer as training
from vae_hub.training.config import TrainConfig
from vae_hub.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("fresh_accelerator_state")


@pytest.mark.parametrize("eval_k", [0, 4])
def test_the_final_metrics_repeat_no_evaluation(tmp_path, mnist_dir, monkeypatch, eval_k):
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("k", 0))
        return evaluate(*args, **kwargs)

    evaluate = training.evaluate
    monkeypatch.setattr(training, "evaluate", counted)
    monkeypatch.setattr(model_folder, "evaluate", counted)
    config = TrainConfig(
        dataset="mnist", data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "run"), epochs=2, batch_size=32,
        hidden_dim=16, latent_dim=2, eval_k=eval_k, progress=False, download=False, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    metrics = Trainer(config).run()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test"] == metrics["test"]
    if eval_k == 0:  # the last epoch's evaluation is the final one: same weights, nothing to add
        assert calls == [0, 0]
        assert metrics["test"]["loss"] == metrics["history"][-1]["test_loss"]
        assert {"recon", "kl", "active_units", "kl_per_dim", "bernoulli_floor"} <= set(metrics["test"])
    else:  # the NLL needs its own pass
        assert calls == [0, 0, eval_k]
        assert metrics["test"]["nll_k"] == eval_k
