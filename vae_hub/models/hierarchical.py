"""A hierarchical VAE: a top latent vector and a latent map at each resolution, inferred top-down.

The generative model is p(z_1) p(z_2 | z_1) ... p(z_L | z_<L) p(x | z), with z_1 the top vector (N(0, I), as in the
one-layer VAE) and each lower z_l a (c, h, w) map whose Gaussian prior is computed from the decoder's state. The
posterior is inferred top-down along the same decoder path (Ladder VAE, Sønderby et al. 2016; NVAE, Vahdat & Kautz
2020; VDVAE, Child 2021): q(z_1 | x) from the encoder's top features, then q(z_l | x, z_<l) from the decoder's state
beside the encoder's features at that resolution, as a shift of the prior (NVAE's residual posterior):
μ_q = μ_p + Δμ, log σ_q² = log σ_p² + Δ. The ELBO is

    E_q[log p(x | z)] − KL(q(z_1 | x) ‖ N(0, I)) − Σ_l E_q[KL(q(z_l | x, z_<l) ‖ p(z_l | z_<l))],

each KL in closed form at the drawn upper layers. ``encode`` gives q(z_1 | x), so the latent maps, interpolation and
the fitted mixture work on the top vector; ``decode(z)`` takes the lower layers at their prior means. With
``pixel_context`` > 0 the decoder is autoregressive over the pixels, p(x | z) = Π_ij p(x_ij | x_<ij, z)
(``PixelContext``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..hub.config_rules import Int, Rule
from .base import MAX_SIDE, MAX_WIDTH, BaseVAE, Decoded, check_positive_int
from .conv import ResidualBlock, conv_widths
from .layers import Conv2d, ConvTranspose2d
from .posterior import LOG_2PI, DiagonalGaussian, gaussian_kl_between

LOGVAR_RANGE = (-12.0, 8.0)  # keeps exp(logvar) finite in bf16 and fp32 however far an update pushes a head


def normal_log_prob(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mean, diag(exp(logvar))) summed over all but the first dimension: (N,)."""
    return -0.5 * ((z - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).flatten(1).sum(-1)


def per_draw(t: Tensor, n: int) -> Tensor:
    """``t`` (B, ...) of B images, repeated to the N = S·B rows of S draws each (sample-major), as the codes are."""
    return t if t.shape[0] == n else t.repeat(n // t.shape[0], *([1] * (t.dim() - 1)))


class TopDownLayer(nn.Module):
    """One lower stochastic layer: its prior p(z_l | z_<l) and posterior q(z_l | x, z_<l) at one resolution.

    Both read the decoder's state ``d``; the posterior also reads the encoder's features ``h`` there. The drawn map
    is projected back into the state, which a residual cell then refines.
    """

    def __init__(self, channels: int, latent_channels: int) -> None:
        super().__init__()
        self.prior = Conv2d(channels, 2 * latent_channels, 3, padding=1)
        self.posterior = nn.Sequential(
            Conv2d(2 * channels, channels, 3, padding=1), nn.ReLU(), Conv2d(channels, 2 * latent_channels, 3, padding=1)
        )
        self.project = Conv2d(latent_channels, channels, 1)
        self.cell = ResidualBlock(channels)
        for head in (self.prior, self.posterior[-1]):  # start at q = p = N(0, I): no KL to fight at the first step
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(
        self,
        d: Tensor,
        h: Tensor | None,
        *,
        draw: bool,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The next decoder state, with z_l from the posterior (``h`` given) or the prior (``h`` None).

        Returns:
            The state, KL(q ‖ p) per image and latent channel (N, c) and log p(z_l) − log q(z_l) (N,) at the draw;
            both None when drawing from the prior.
        """
        p_mean, p_logvar = self.prior(d).float().chunk(2, dim=1)
        p_logvar = p_logvar.clamp(*LOGVAR_RANGE)
        if h is None:
            mean, logvar, scale = p_mean, p_logvar, temperature
        else:
            shift, dlogvar = self.posterior(torch.cat([d, h], dim=1)).float().chunk(2, dim=1)
            mean, logvar, scale = p_mean + shift, (p_logvar + dlogvar).clamp(*LOGVAR_RANGE), 1.0
        z = mean
        if draw and scale > 0:
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + scale * torch.exp(0.5 * logvar) * eps
        d = self.cell(d + self.project(z.to(d.dtype)))
        if h is None:
            return d, None, None
        kl = gaussian_kl_between(mean, logvar, p_mean, p_logvar).sum((2, 3))  # (N, c)
        log_ratio = normal_log_prob(z, p_mean, p_logvar) - normal_log_prob(z, mean, logvar)
        return d, kl, log_ratio


class PixelContext(nn.Module):
    """An autoregressive decoder head: each pixel's logits from the decoder's state there and the pixels already
    decoded above it and to its left, within ``reach`` pixels (PixelVAE, Gulrajani et al. 2016).

    p(x | z) = Π_ij p(x_ij | x_<ij, z): the state carries what the codes say; the neighbours carry the local detail
    (edges, texture) that a decoder with independent pixels can only blur. In training and in the likelihood the
    neighbours are the image's own pixels (one masked convolution, "teacher forcing"); to decode, the pixels are
    filled in raster order, each set to its predicted mean, which the next pixels then read. The channels of one
    pixel are independent given its neighbours and the state.
    """

    def __init__(self, channels: int, width: int, reach: int) -> None:
        super().__init__()
        self.reach = reach
        side = 2 * reach + 1
        self.context = nn.Conv2d(channels, width, side, padding=reach, bias=False)
        self.hidden = Conv2d(width, width, 1)
        self.out = Conv2d(width, channels, 1)

    def window(self) -> Tensor:
        """The context convolution's weight with the pixel itself and those after it in raster order zeroed."""
        r = self.reach
        mask = torch.ones(2 * r + 1, 2 * r + 1, device=self.context.weight.device)
        mask[r, r:] = 0
        mask[r + 1 :] = 0
        return self.context.weight * mask

    def forward(self, state: Tensor, x: Tensor) -> Tensor:
        """Logits (N, C, H, W) at every pixel at once, reading the true pixels ``x`` (N, C, H, W) as neighbours."""
        context = F.conv2d(x.to(state.dtype), self.window().to(state.dtype), padding=self.reach)
        return self.out(torch.relu(self.hidden(torch.relu(state + context))))

    def generate(self, state: Tensor) -> Tensor:
        """Logits (N, C, H, W) decoded pixel by pixel in raster order, each pixel reading the means decoded before."""
        return self.fill(state)[0]

    def fill(self, state: Tensor, observe: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Decode pixel by pixel in raster order: the logits (N, C, H, W) and the pixels each step wrote, which
        the later pixels read: each pixel's mean, or ``observe(mean)`` (a draw from p(x_ij | x_<ij, z))."""
        n, _, height, width = state.shape
        r, channels = self.reach, self.out.out_channels
        canvas = state.new_zeros(n, channels, height + r, width + 2 * r)  # zero padding above, left and right
        window = self.window()[:, :, : r + 1].flatten(1).to(state.dtype).t()  # rows up to ij
        hidden_w, hidden_b = self.hidden.weight.flatten(1).t().to(state.dtype), self.hidden.bias.to(state.dtype)
        out_w, out_b = self.out.weight.flatten(1).t().to(state.dtype), self.out.bias.to(state.dtype)
        rows = state.permute(2, 3, 0, 1).contiguous()  # (H, W, N, width): each pixel's state, contiguous
        logits = state.new_empty(height, width, n, channels)
        for i in range(height):
            for j in range(width):
                patch = canvas[:, :, i : i + r + 1, j : j + 2 * r + 1].reshape(n, -1)
                h = torch.relu(torch.addmm(hidden_b, torch.relu(rows[i, j] + patch @ window), hidden_w))
                logit = torch.addmm(out_b, h, out_w)
                logits[i, j] = logit
                mean = torch.sigmoid(logit)
                canvas[:, :, i + r, j + r] = mean if observe is None else observe(mean)
        return logits.permute(2, 3, 0, 1), canvas[:, :, r:, r : r + width]


class HierarchicalVAE(BaseVAE):
    """A hierarchical VAE for (C, H, W) images: a ``latent_dim`` top vector and a ``latent_channels`` map at each
    of the ``num_downsamples`` resolutions below it (7x7 and 14x14 for 28x28 images), inferred top-down.

    The encoder is the ConvVAE's (stride-2 4x4 convolutions doubling the channels from ``base_channels``, each
    followed by ``res_blocks`` residual blocks), keeping its features at each resolution; the decoder mirrors it,
    with a ``TopDownLayer`` at each resolution before upsampling. ``free_bits`` in training applies to each top
    dimension and to each lower layer's channel (a group of h·w dimensions), which keeps the upper layers in use.

    Args:
        image_shape: The images' (C, H, W); H and W must be divisible by 2 ** ``num_downsamples``.
        latent_dim: Dimensions of the top vector z_1 (what ``encode`` describes).
        latent_channels: Channels of each lower latent map.
        base_channels: Channels of the first convolution.
        hidden_dim: Width of the layer before the top heads (and after z_1 in the decoder).
        num_downsamples: Stride-2 convolutions, >= 1: the number of lower latent maps.
        res_blocks: Residual blocks after each downsampling and in each top-down cell's place, in [0, 16].
        likelihood: The decoder's p(x|z): ``"bernoulli"`` or ``"gaussian"``.
        gaussian_std: The Gaussian decoder's standard deviation, > 0.
        learn_std: Learn that standard deviation.
        pixel_context: 0 for pixels independent given the codes; r >= 1 for an autoregressive decoder in which
            each pixel also reads the pixels decoded before it, up to r rows above and r columns to each side
            (``PixelContext``, ``base_channels`` wide).
    """

    config_rules: ClassVar[dict[str, Rule]] = {
        name: rule for name, rule in BaseVAE.config_rules.items() if name not in ("prior", "pseudo_inputs")
    } | {  # its top code's prior is N(0, I); the lower layers' priors are learned
        "latent_channels": Int(1, 2**10),
        "base_channels": Int(1, 2**16),
        "hidden_dim": Int(1, MAX_WIDTH),
        "num_downsamples": Int(1, MAX_SIDE.bit_length() - 1),
        "res_blocks": Int(0, 16),
        "num_classes": Int(0, 0),
        "pixel_context": Int(0, 8),
    }

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        latent_dim: int = 16,
        latent_channels: int = 8,
        base_channels: int = 32,
        hidden_dim: int = 256,
        num_downsamples: int = 2,
        res_blocks: int = 1,
        likelihood: str = "bernoulli",
        gaussian_std: float = 0.1,
        learn_std: bool = False,
        num_classes: int = 0,
        class_names: Sequence[str] | None = None,
        deterministic: bool = False,
        pixel_context: int = 0,
    ) -> None:
        super().__init__()
        if num_classes or deterministic:
            raise ValueError("HierarchicalVAE is neither conditional nor deterministic: leave num_classes at 0")
        self._setup(image_shape, latent_dim, likelihood, gaussian_std, learn_std)
        check_positive_int("latent_channels", latent_channels)
        check_positive_int("hidden_dim", hidden_dim)
        if type(pixel_context) is not int or pixel_context < 0:
            raise ValueError(f"pixel_context must be an integer >= 0 (0: independent pixels), got {pixel_context!r}")
        widths, self.feature_shape = conv_widths(self, base_channels, num_downsamples, res_blocks)
        self.latent_channels, self.res_blocks, self.pixel_context = latent_channels, res_blocks, pixel_context
        c = self.image_shape[0]
        features = math.prod(self.feature_shape)

        # Bottom-up: one stage per resolution, its output kept for the top-down pass at that resolution.
        self.encoder_stages = nn.ModuleList(
            nn.Sequential(
                Conv2d(c_in, c_out, 4, stride=2, padding=1),
                nn.ReLU(),
                *[ResidualBlock(c_out) for _ in range(res_blocks)],
            )
            for c_in, c_out in zip([c, *widths[:-1]], widths, strict=False)
        )
        self.encoder_backbone = nn.Sequential(nn.Flatten(), nn.Linear(features, hidden_dim), nn.ReLU())
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)

        # Top-down: z_1 to the coarsest state, then per resolution (coarse to fine) a stochastic layer and upsampling.
        self.decoder_input = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, features), nn.ReLU(),
            nn.Unflatten(1, self.feature_shape),
        )  # fmt: skip
        rev = widths[::-1]
        self.top_down = nn.ModuleList(TopDownLayer(width, latent_channels) for width in rev)
        self.cells = nn.ModuleList(
            nn.Sequential(*[ResidualBlock(width) for _ in range(max(res_blocks - 1, 0))]) for width in rev
        )
        # with an autoregressive head, the last upsampling gives the head's state instead of the logits
        self.upsample = nn.ModuleList(
            ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
            for c_in, c_out in zip(rev, [*rev[1:], base_channels if pixel_context else c], strict=False)
        )
        self.pixel_head = PixelContext(c, base_channels, pixel_context) if pixel_context else None

    @property
    def lower_shapes(self) -> list[tuple[int, int, int]]:
        """The (c, h, w) of each lower latent map, top to bottom."""
        _, h, w = self.image_shape
        n = len(self.top_down)
        return [(self.latent_channels, h // 2 ** (n - i), w // 2 ** (n - i)) for i in range(n)]

    def _encode(self, x: Tensor, labels: Tensor | None = None) -> DiagonalGaussian:
        features = []
        h = x
        for stage in self.encoder_stages:
            h = stage(h)
            features.append(h)
        top = self.encoder_backbone(h)
        # the images come last: an autoregressive head reads them as each pixel's neighbours
        return DiagonalGaussian(self.fc_mu(top), self.fc_logvar(top), features=(*features[::-1], x))

    def _run_top_down(
        self,
        z: Tensor,
        features: Sequence[Tensor] | None,
        *,
        draw: bool,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Decoded:
        """The last layer's output at top codes ``z`` (N, latent_dim): the logits, or the autoregressive head's state.

        The lower layers come from their posteriors given ``features`` (coarsest first, B images each, N a multiple
        of B) or from their priors when ``features`` is None."""
        d = self.decoder_input(z)
        kls, ratios = [], []
        for i, (layer, cell, up) in enumerate(zip(self.top_down, self.cells, self.upsample, strict=True)):
            h = None
            if features is not None:
                h = per_draw(features[i], d.shape[0])
            d, kl, ratio = layer(d, h, draw=draw, temperature=temperature, generator=generator)
            kls.append(kl)
            ratios.append(ratio)
            d = up(cell(d))
            if i < len(self.upsample) - 1:
                d = torch.relu(d)
        if features is None:
            return Decoded(d)
        return Decoded(d, torch.cat(kls, dim=1), torch.stack(ratios).sum(0))

    def _decode_posterior(
        self,
        z: Tensor,
        posterior: DiagonalGaussian,
        labels: Tensor | None = None,
        *,
        draw: bool = True,
        generator: torch.Generator | None = None,
    ) -> Decoded:
        if posterior.features is None:
            raise ValueError("HierarchicalVAE needs the posterior its own encode() returned, with the encoder features")
        out = self._run_top_down(z, posterior.features, draw=draw, generator=generator)
        if self.pixel_head is None:
            return out
        if not draw:  # the reconstruction: the pixels decoded in turn, not read from the image
            return Decoded(self.pixel_head.generate(out.logits), out.lower_kl, out.lower_log_ratio)
        x = per_draw(posterior.features[-1], z.shape[0])
        return Decoded(self.pixel_head(out.logits, x), out.lower_kl, out.lower_log_ratio, state=out.logits)

    def decoded_means(self, out: Decoded) -> Tensor:
        if out.state is None:
            return torch.sigmoid(out.logits)
        return torch.sigmoid(self.pixel_head.generate(out.state)).reshape(out.logits.shape)

    @torch.no_grad()
    def observe_reconstruction(self, x: Tensor, labels: Any = None, generator: torch.Generator | None = None) -> Tensor:
        if self.pixel_head is None:
            return super().observe_reconstruction(x, labels, generator)
        native = self.check_input(x)
        q = self._encode(native)
        state = self._run_top_down(q.mode(), q.features, draw=False).logits
        _, drawn = self.pixel_head.fill(state, lambda mean: self.observe(mean, generator))  # each pixel drawn in turn
        return drawn.reshape(x.shape)

    def _pixels(self, state: Tensor) -> Tensor:
        """Logits from the last layer's output: itself, or the autoregressive head's decoding of it."""
        return state if self.pixel_head is None else self.pixel_head.generate(state)

    def _decode_logits(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self._pixels(self._run_top_down(z, None, draw=False).logits)

    def _decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return torch.sigmoid(self._decode_logits(z, labels))

    def _generate(
        self, z: Tensor, labels: Tensor | None, temperature: float, generator: torch.Generator | None
    ) -> Tensor:
        out = self._run_top_down(z, None, draw=True, temperature=temperature, generator=generator)
        return torch.sigmoid(self._pixels(out.logits))
