"""The MLP VAE's training step written out by hand: forward pass, ELBO and backward pass in one function.

Autograd records ~80 small operations per step of the 784-400-20 MLP and allocates a fresh buffer for each; on a CPU
that bookkeeping costs as much as the matmuls themselves. This step does the same maths with the 10 matmuls and a
handful of elementwise operations the MLP VAE needs, writes the gradients into buffers that live as long as the
model, and casts the weights once per step for bf16 matmuls (fp32 accumulation, fp32 loss and gradients: what
``torch.autocast`` does). ``tests/training/test_fused_step.py`` checks loss and every gradient against autograd.

Forward (B images x, D pixels, H hidden units, L latent dimensions; W, b: each ``nn.Linear``'s weight and bias):
    h = relu(x W1' + b1)                     encoder backbone                               (B, H)
    [mu, logvar] = h Wh' + bh                fc_mu and fc_logvar as one matmul              (B, 2L)
    z = mu + eps * sigma, sigma = exp(logvar / 2), eps ~ N(0, I)    reparameterization      (B, L)
    g = relu(z W3' + b3);  l = g W4' + b4    decoder, up to its sigmoid (logits)            (B, D)
    recon = sum_d softplus(l) - x l          -log p(x|z), Bernoulli (BCE with logits)
    kl = 1/2 sum_j (mu^2 + sigma^2 - logvar - 1)
    loss = sum_b recon + beta * sum_b kl
Backward (dY = d loss / dY):
    dl = sigmoid(l) - x;  dW4 = dl' g;  dg = dl W4 [g > 0];  dW3 = dg' z;  dz = dg W3
    dmu = dz + beta mu;  dlogvar = dz eps sigma / 2 + beta (sigma^2 - 1) / 2
    dh = [dmu, dlogvar] Wh [h > 0];  dWh = [dmu, dlogvar]' h;  dW1 = dh' x;  each db = the column sums of its dY
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..models.mlp import VariationalAutoencoder
from ..models.objectives import softplus_sum
from ..models.posterior import DiagonalGaussian


def fused_step_problem(model: torch.nn.Module, *, iw_samples: int, free_bits: float, processes: int) -> str | None:
    """Why ``FusedMLPStep`` cannot train ``model`` with these settings (None when it can)."""
    if type(model) is not VariationalAutoencoder:
        return "it is written for the MLP VAE (--model mlp)"
    if model.prior != "standard":
        return "it computes the closed-form KL to N(0, I), not to the VampPrior"
    if model.likelihood != "bernoulli" or model.conditional or model.deterministic:
        return "it covers the Bernoulli VAE only (no --likelihood gaussian, --conditional or --autoencoder)"
    if iw_samples > 1 or free_bits > 0:
        return "it computes the one-sample ELBO without free bits"
    if processes > 1:
        return "several processes need DDP's gradient all-reduce, which hooks into autograd"
    return None


def relu_backward(grad: Tensor, out: Tensor) -> Tensor:
    """``grad * (out > 0)``, the gradient through ``out = relu(.)``, in one pass (torch's own ReLU backward
    kernel) instead of a mask and a product."""
    return torch.ops.aten.threshold_backward(grad, out, 0)


class FusedMLPStep:
    """``step(x, beta)`` sets ``p.grad`` of every parameter of ``model`` to d loss / d p for the ELBO on ``x``.

    ``dtype`` is the matmuls' precision (torch.float32 or torch.bfloat16). Returns the batch sums
    (loss, -ELBO, reconstruction, KL) as one fp32 tensor, like ``losses.elbo`` gives them.
    """

    def __init__(self, model: VariationalAutoencoder, dtype: torch.dtype = torch.float32) -> None:
        self.model, self.dtype = model, dtype
        self.layers = (model.encoder_backbone[0], model.fc_mu, model.fc_logvar, model.decoder[0], model.decoder[2])
        # gradients live as long as the step: the optimizer reads them, no step allocates them again
        self.grads = {p: torch.zeros_like(p) for p in model.parameters()}
        # the two heads' gradients as halves of one tensor each, which one matmul (and one sum) writes in place
        latent = model.fc_mu.out_features
        self.head_weight_grad = torch.cat([self.grads[model.fc_mu.weight], self.grads[model.fc_logvar.weight]])
        self.head_bias_grad = torch.cat([self.grads[model.fc_mu.bias], self.grads[model.fc_logvar.bias]])
        for i, head in enumerate((model.fc_mu, model.fc_logvar)):
            self.grads[head.weight] = self.head_weight_grad[i * latent : (i + 1) * latent]
            self.grads[head.bias] = self.head_bias_grad[i * latent : (i + 1) * latent]
        self.buffers: dict[tuple[str, tuple[int, ...]], Tensor] = {}

    def buffer(self, name: str, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype) -> Tensor:
        """A reused buffer, reallocated only when its shape changes (the last batch of an epoch). A fresh buffer of
        a few hundred kB per step costs a CPU more than the arithmetic on it: the allocator maps and unmaps it."""
        key = (name, tuple(shape))
        buf = self.buffers.get(key)
        if buf is None:
            if len(self.buffers) > 64:  # many batch sizes (e.g. a test): keep memory bounded
                self.buffers.clear()
            buf = self.buffers[key] = torch.empty(shape, dtype=dtype, device=self.grads_device)
        return buf

    @property
    def grads_device(self) -> torch.device:
        return next(iter(self.grads.values())).device

    @torch.no_grad()
    def __call__(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """``x``: (B, ...) images in [0, 1], or uint8 pixels (divided by 255 here, into a reused buffer)."""
        enc, fc_mu, fc_logvar, dec1, dec2 = self.layers
        c, f32, buf = self.dtype, torch.float32, self.buffer
        n = x.shape[0]
        x = x.reshape(n, -1)
        if x.dtype == torch.uint8:
            x = torch.div(x, 255, out=buf("x", x.shape, f32))  # as data.to_unit does, to the last bit
        x = x.to(f32)
        d, latent = x.shape[1], fc_mu.out_features
        xc = x.to(c) if c == f32 else buf("xc", x.shape, c).copy_(x)
        w1 = enc.weight if c == f32 else buf("w1", enc.weight.shape, c).copy_(enc.weight)
        w4 = dec2.weight if c == f32 else buf("w4", dec2.weight.shape, c).copy_(dec2.weight)
        w3 = dec1.weight.to(c)
        wh = torch.cat([fc_mu.weight, fc_logvar.weight]).to(c)
        bh = torch.cat([fc_mu.bias, fc_logvar.bias])

        # forward
        h = torch.addmm(enc.bias.to(c), xc, w1.t()).relu_()
        heads = torch.addmm(bh.to(c), h, wh.t()).to(f32)
        posterior = DiagonalGaussian(heads[:, :latent], heads[:, latent:])
        mu, sigma = posterior.mean, posterior.std
        eps = torch.randn_like(sigma)  # kept: the backward pass needs it
        z = torch.addcmul(mu, eps, sigma)  # the reparameterization trick, z = mu + sigma * eps
        zc = z.to(c)
        g = torch.addmm(dec1.bias.to(c), zc, w3.t()).relu_()
        logits = torch.addmm(dec2.bias.to(c), g, w4.t(), out=buf("logits", (n, d), c))
        lf = logits if c == f32 else buf("lf", (n, d), f32).copy_(logits)
        recon = softplus_sum(lf, out=buf("softplus", (n, d), f32)) - torch.dot(x.view(-1), lf.view(-1))
        var = sigma * sigma
        kl = posterior.kl().sum()

        # backward
        dl = torch.sigmoid(lf, out=buf("dl", (n, d), f32)).sub_(x)
        dlc = dl if c == f32 else buf("dlc", (n, d), c).copy_(dl)
        self.set_grad(dec2, torch.mm(dlc.t(), g, out=self.weight_grad(dec2, c)), dl)
        dg = relu_backward(torch.mm(dlc, w4), g)
        self.set_grad(dec1, torch.mm(dg.t(), zc, out=self.weight_grad(dec1, c)), dg)
        dz = (dg @ w3).to(f32)
        dmu = dz + beta * mu
        dlogvar = dz * eps * 0.5 * sigma + 0.5 * beta * (var - 1)
        dheads = torch.cat([dmu, dlogvar], 1)
        dhc = dheads.to(c)
        dwh = torch.mm(dhc.t(), h, out=self.head_weight_grad if c == f32 else buf("dWh", wh.shape, c))
        if dwh is not self.head_weight_grad:
            self.head_weight_grad.copy_(dwh)
        torch.sum(dheads, 0, out=self.head_bias_grad)
        dh = relu_backward(torch.mm(dhc, wh), h)
        self.set_grad(enc, torch.mm(dh.t(), xc, out=self.weight_grad(enc, c)), dh)
        for p, grad in self.grads.items():
            p.grad = grad
        return torch.stack([recon + beta * kl, recon + kl, recon, kl])

    def weight_grad(self, layer: torch.nn.Linear, dtype: torch.dtype) -> Tensor:
        """Where a matmul in ``dtype`` writes ``layer``'s weight gradient: its .grad itself in fp32 (no copy)."""
        grad = self.grads[layer.weight]
        return grad if dtype == grad.dtype else self.buffer(f"dW{id(layer)}", grad.shape, dtype)

    def set_grad(self, layer: torch.nn.Linear, dw: Tensor, dy: Tensor) -> None:
        """Store a layer's weight gradient ``dw`` (unless written in place) and its bias gradient, the column sums
        of ``dy`` (its output's)."""
        if dw is not self.grads[layer.weight]:
            self.grads[layer.weight].copy_(dw)
        torch.sum(dy, 0, dtype=torch.float32, out=self.grads[layer.bias])
