"""The lab's pieces: the deterministic autoencoder, latent-space geometry (projection, gaps), live training,
and the map's click-to-coordinates mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import run_script, tiny_train_args
from idx_data import write_idx

from vae_hub import ConvVAE, VariationalAutoencoder, from_pretrained
from vae_hub.evaluation.latent_space import fitted_gaussian_draws, gaps, posterior_means, projection
from vae_hub.evaluation.summary import evaluate
from vae_hub.models.objectives import elbo, iwae
from vae_hub.training.live import train_live


# --- the autoencoder -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_a_deterministic_autoencoder_has_no_noise_and_no_kl(kind, tmp_path):
    model = (VariationalAutoencoder(784, 32, 2, deterministic=True) if kind == "mlp"
             else ConvVAE(latent_dim=2, base_channels=4, hidden_dim=16, deterministic=True))  # fmt: skip
    x = torch.rand(5, 1, 28, 28)
    a, mu, _ = model(x)
    b, _, _ = model(x)
    assert torch.equal(a, b), "z = encoder(x): no sampling"
    assert torch.allclose(a, model.decode(mu).reshape(a.shape))
    out = elbo(model, x)
    assert float(out.kl.abs().sum()) == 0 and torch.allclose(out.loss, out.recon.sum())
    with pytest.raises(ValueError, match="needs a VAE"):
        iwae(model, x, 4)
    metrics = evaluate(model, x, k=16)
    assert "nll" not in metrics and metrics["kl"] == 0  # an autoencoder defines no p(x)
    model.save_pretrained(tmp_path / kind)
    assert json.loads((tmp_path / kind / "config.json").read_text())["deterministic"] is True
    again = from_pretrained(tmp_path / kind)
    assert again.deterministic and torch.equal(again(x)[0], a)


def test_deterministic_must_be_a_boolean():
    with pytest.raises(ValueError, match="deterministic must be true or false"):
        VariationalAutoencoder(784, 8, 2, deterministic="yes")


def test_train_an_autoencoder_from_the_command_line(tmp_path):
    data = write_idx(tmp_path / "data", n_train=64, n_test=16)
    result = run_script("train.py", *tiny_train_args(data, tmp_path / "ae", "--epochs", "1", "--autoencoder"))
    assert result.returncode == 0, result.stderr
    assert from_pretrained(tmp_path / "ae").deterministic
    card = (tmp_path / "ae" / "README.md").read_text()
    assert "a deterministic autoencoder (no KL, not a VAE)" in card
    refused = run_script("train.py", *tiny_train_args(data, tmp_path / "x", "--autoencoder", "--beta", "4"))
    assert refused.returncode == 2 and "--autoencoder has no KL term" in refused.stderr


# --- latent-space geometry -----------------------------------------------------------------------------------
def test_projection_is_the_identity_in_2d_and_an_orthonormal_pca_plane_above():
    codes = torch.randn(200, 2)
    plane = projection(codes)
    assert torch.equal(plane.to_plane(codes), codes) and torch.equal(plane.to_latent(codes), codes)
    flat = torch.randn(500, 2) @ torch.tensor([[3.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0]])  # a 2-D plane in 5-D
    plane = projection(flat + 1.0)
    assert torch.allclose(plane.axes @ plane.axes.T, torch.eye(2), atol=1e-5)
    assert plane.explained == pytest.approx(1.0, abs=1e-4)
    assert torch.allclose(plane.to_latent(plane.to_plane(flat + 1.0)), flat + 1.0, atol=1e-4)  # on the plane


def test_gaps_count_draws_far_from_every_code_whatever_the_scale():
    codes = torch.cat([torch.randn(300, 2) * 0.1 + 3, torch.randn(300, 2) * 0.1 - 3])  # two islands
    between = torch.randn(100, 2) * 0.3  # the empty middle
    on_codes = codes[::6] + 0.001
    assert gaps(codes, between).fraction == 1.0
    assert gaps(codes, on_codes).fraction == 0.0
    assert gaps(codes * 50, between * 50).fraction == 1.0  # scale-free: the threshold follows the codes
    blob = torch.randn(2000, 2)
    assert gaps(blob[:1000], blob[1000:]).fraction < 0.15  # draws from the codes' own law rarely fall in a gap


def test_fitted_gaussian_draws_match_the_codes_mean_and_spread():
    codes = torch.randn(4000, 2) * torch.tensor([5.0, 0.5]) + torch.tensor([10.0, -2.0])
    draws = fitted_gaussian_draws(codes, torch.randn(4000, 2))
    assert torch.allclose(draws.mean(0), codes.mean(0), atol=0.3)
    assert torch.allclose(draws.std(0), codes.std(0), rtol=0.1)


def test_posterior_means_of_a_conditional_model_use_the_labels():
    model = VariationalAutoencoder(784, 16, 3, num_classes=2)
    x = torch.rand(6, 784)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    assert torch.allclose(posterior_means(model, x, labels, batch_size=4), model.encode(x, labels)[0])


# --- live training -------------------------------------------------------------------------------------------
def test_live_training_lowers_the_loss_and_reports_progress():
    torch.manual_seed(0)
    images = (torch.rand(64, 1, 28, 28) > 0.7).float()
    model = VariationalAutoencoder(784, 32, 2)
    before = evaluate(model, images)["loss"]
    reports = list(train_live(model, images, epochs=20, batch_size=16, budget_seconds=120, report_every=0.0))
    assert reports[-1].done and not reports[-1].stopped_by_budget and reports[-1].step == 20 * 4
    assert [r.step for r in reports] == sorted(r.step for r in reports)
    assert evaluate(model, images)["loss"] < before - 20
    assert not model.training


def test_live_training_stops_at_its_budget_and_when_the_caller_stops():
    model = VariationalAutoencoder(784, 16, 2)
    images = torch.rand(32, 1, 28, 28)
    last = list(train_live(model, images, epochs=10_000, batch_size=8, budget_seconds=0.3, report_every=0.1))[-1]
    assert last.done and last.stopped_by_budget and last.step < 10_000 * 4
    steps = train_live(model, images, epochs=10, batch_size=8, report_every=0.0)
    next(steps)
    steps.close()  # a cancelled request: the generator is closed
    assert not model.training
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        next(train_live(model, images, epochs=0))


def live_training():
    pytest.importorskip("gradio")
    from vae_hub.space.lab.live import LiveTraining
    from vae_hub.space.model_store import ModelStore

    return LiveTraining(ModelStore({"any": "unused"}))


def test_the_page_trains_live_in_a_worker_process_with_one_thread_at_a_lower_priority():
    import os

    live = live_training()
    steps = live.train(2, 1.0, 30, "bernoulli", 30)
    assert next(steps)[0].startswith("Starting the training in its own process")
    worker = live.worker
    assert worker.pid != os.getpid()
    assert next(steps)[0].startswith("Epoch ")  # it trains, and has set its priority and threads by now
    assert os.getpriority(os.PRIO_PROCESS, worker.pid) > os.getpriority(os.PRIO_PROCESS, 0) or os.nice(0) >= 19
    assert b"OMP_NUM_THREADS=1\0" in Path(f"/proc/{worker.pid}/environ").read_bytes()
    steps.close()  # a cancelled request: Gradio closes the generator
    assert worker.returncode is not None and not Path(f"/proc/{worker.pid}").exists(), "its process has ended"
    assert live.worker is None


def test_a_live_training_whose_process_dies_is_a_message_and_the_page_goes_on():
    import os
    import signal

    from vae_hub.space.inputs import Rejected

    live = live_training()
    steps = live.train(2, 1.0, 30, "bernoulli", 30)
    next(steps)
    os.kill(live.worker.pid, signal.SIGKILL)
    with pytest.raises(Rejected, match=r"process ended unexpectedly \(it was stopped by SIGKILL\).*Train to try"):
        for _ in steps:
            pass
    assert live.worker is None and live.store.cached_names() == []  # nothing half-trained is served
    *_, last = live.train(2, 1.0, 1, "bernoulli", 5)  # the next visitor's training runs
    assert last[0].startswith("**Done") and last[4].startswith("trained-")
    assert live.store.get(last[4]).model.latent_dim == 2


# --- the map picture -----------------------------------------------------------------------------------------
def test_a_click_on_the_map_gives_back_the_plane_coordinates_drawn_there():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vae_hub.space.lab.latent_plot import AXES, HEIGHT_PX, WIDTH_PX, View, draw_map

    view = View(0.5, -1.0, 4.0)
    fig = plt.figure(figsize=(WIDTH_PX / 100, HEIGHT_PX / 100), dpi=100)
    ax = fig.add_axes(AXES)
    ax.set(xlim=view.xlim, ylim=view.ylim)
    ax.set_aspect("equal")
    fig.canvas.draw()
    for point in ((2.0, 1.5), (-3.0, -4.0), (0.5, -1.0)):
        px, py = ax.transData.transform(point)
        assert view.from_pixel(px, HEIGHT_PX - py) == pytest.approx(point, abs=1e-6)
    plt.close(fig)
    picture = draw_map(torch.randn(50, 2), torch.arange(50) % 3, ["a", "b", "c"], view, torch.zeros(2),
                       title="t", axis_names=("z0", "z1"), marks=[(1.0, 1.0, "you")])  # fmt: skip
    assert picture.shape == (HEIGHT_PX, WIDTH_PX, 3)
