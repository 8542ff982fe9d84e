"""The VQ-VAE's parts: the vector quantizer (nearest entry, straight-through gradient, moving-average codebook, dead
entries restarted) and the autoregressive code prior (causal, a normalised distribution, sampling)."""

import itertools
import math

import torch

from vae_hub.models.code_prior import CodePrior
from vae_hub.models.quantizer import VectorQuantizer


def test_each_vector_snaps_to_its_nearest_entry_and_the_gradient_passes_straight_through():
    vq = VectorQuantizer(8, 3).eval()
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = vq(z)
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    expected = torch.cdist(flat, vq.codebook).argmin(1).reshape(2, 4, 4)
    assert torch.equal(out.indices, expected)
    torch.testing.assert_close(out.z_q.detach(), vq.lookup(expected))
    out.z_q.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))  # d z_q / d z_e = I
    torch.testing.assert_close(out.commitment, (z.detach() - vq.lookup(expected)).pow(2).flatten(1).sum(1))


def test_the_codebook_moves_to_the_mean_of_its_vectors_and_dead_entries_restart():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, decay=0.5, dead_after=0.05).train()
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0]])
    for _ in range(60):  # two clusters: two entries end at their centres, the others are restarted among them
        points = centres[torch.randint(0, 2, (64,))] + 0.1 * torch.randn(64, 2)
        vq(points.T.reshape(2, 64, 1).permute(1, 0, 2).unsqueeze(-1))
    nearest = torch.cdist(centres, vq.codebook).min(1).values
    assert (nearest < 0.1).all(), vq.codebook
    assert (torch.cdist(vq.codebook, centres).min(1).values < 0.5).all(), "a dead entry was left where no data is"


def test_perplexity_counts_the_entries_in_use():
    vq = VectorQuantizer(8, 2)
    assert math.isclose(vq.perplexity(torch.arange(8).repeat(5)), 8.0, rel_tol=1e-6)
    assert math.isclose(vq.perplexity(torch.zeros(40, dtype=torch.long)), 1.0)


def test_the_code_prior_is_causal():
    torch.manual_seed(0)
    prior = CodePrior(5, (2, 3), width=16, layers=2, heads=2).eval()
    a = torch.randint(0, 5, (1, 2, 3))
    b = a.clone()
    b[0, 1, 2] = (a[0, 1, 2] + 1) % 5  # change the last code: no earlier position may notice
    la, lb = prior.logits(a), prior.logits(b)
    torch.testing.assert_close(la, lb)  # position i sees codes < i only, and the last code is seen by none
    b[0, 0, 1] = (a[0, 0, 1] + 1) % 5
    lb = prior.logits(b)
    torch.testing.assert_close(la[:, :2], lb[:, :2])
    assert not torch.allclose(la[:, 2:], lb[:, 2:])


def test_the_code_prior_is_a_distribution_over_every_grid():
    torch.manual_seed(0)
    prior = CodePrior(3, (1, 3), width=8, layers=1, heads=2).eval()
    grids = torch.tensor(list(itertools.product(range(3), repeat=3))).reshape(-1, 1, 3)
    with torch.no_grad():
        total = torch.logsumexp(prior.log_prob(grids), 0)
    assert abs(float(total)) < 1e-5  # the 27 grids' probabilities add up to 1


def test_the_code_prior_learns_a_fixed_pattern_and_samples_it():
    torch.manual_seed(0)
    prior = CodePrior(4, (2, 2), width=16, layers=1, heads=2)
    pattern = torch.tensor([[[0, 3], [1, 2]], [[2, 1], [3, 0]]])  # two grids, half the data each
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    for _ in range(150):
        loss = -prior.log_prob(pattern).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(-prior.log_prob(pattern).mean()) < math.log(2) + 0.05  # one bit: which of the two
    samples = prior.sample(50, generator=torch.Generator().manual_seed(0))
    assert all(any(torch.equal(s, p) for p in pattern) for s in samples)
    first = samples[:, 0, 0]
    assert 10 < int((first == 0).sum()) < 40  # both grids drawn
