"""A VQ-VAE (van den Oord et al. 2017): an encoder to a grid of codebook entries, a decoder, and a prior over grids.

Each image becomes an (h, w) grid of indices into a learned codebook; the decoder maps the entries back to pixels.
Training has two stages, run by the same ``vae-hub train --model vqvae`` command: first the encoder, codebook and
decoder (reconstruction plus the commitment loss; the codebook by moving averages, see ``quantizer``), then the
autoregressive ``CodePrior`` over the code grids of the training images. ``sample()`` draws a grid from that
prior and decodes it.

The likelihood, reported honestly: with the posterior a point mass at the image's grid c(x), the model
p(x) = Σ_c p(c) p(x | c) has −log p(x) ≤ −log p(x | c(x)) − log p(c(x)), the reconstruction term plus the
prior's code length. That bound is what ``nll_bound`` gives; it is not an importance-sampled estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from ..hub import save_load as hub
from ..hub.config_rules import Float, ImageShape, Int, Rule
from .base import MAX_CHANNELS, MAX_SIDE, REPO_URL, check_image_shape, check_images, check_positive_int
from .code_prior import CodePrior
from .conv import ResidualBlock, conv_widths
from .layers import Conv2d, ConvTranspose2d
from .objectives import bernoulli_nll
from .quantizer import Quantized, VectorQuantizer


@dataclass(frozen=True)
class VQOutput:
    """What ``model(x)`` returns: the decoder's logits (B, C, H, W) at the snapped codes, and the quantizer's output."""

    logits: Tensor
    quantized: Quantized

    @property
    def recon_x(self) -> Tensor:
        """The reconstruction: pixel means in [0, 1]."""
        return torch.sigmoid(self.logits)


@dataclass(frozen=True)
class VQLoss:
    """The first stage's objective of a batch: sums over its images, in nats (``loss`` is what is minimised)."""

    loss: Tensor
    recon_sum: Tensor
    commitment_sum: Tensor
    indices: Tensor


class VQVAE(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="vae-hub",
    license="mit",
    repo_url=REPO_URL,
    docs_url=REPO_URL,
    pipeline_tag="unconditional-image-generation",
    tags=["vq-vae", "vector-quantization", "image-generation", "pytorch"],
):
    """A VQ-VAE with a Bernoulli decoder (grey levels in [0, 1]) and a causal-transformer prior over its code grid.

    Args:
        image_shape: The images' (C, H, W); H and W must be divisible by 2 ** ``num_downsamples``.
        num_codes: Codebook entries K.
        code_dim: Their dimension (the encoder's output channels).
        base_channels: Channels of the first convolution (doubling after each downsampling).
        num_downsamples: Stride-2 convolutions: the code grid is (H, W) / 2 ** this.
        res_blocks: Residual blocks after each downsampling and before each upsampling.
        commitment: β of the commitment loss β ‖z_e − sg(z_q)‖² (0.25 in the paper).
        decay: The codebook's moving-average decay (0.99 in the paper).
        prior_width: The code prior's transformer width.
        prior_layers: Its layers.
        prior_heads: Its attention heads (``prior_width`` divisible by them).
    """

    config_rules: ClassVar[dict[str, Rule]] = {
        "image_shape": ImageShape(MAX_CHANNELS, MAX_SIDE),
        "num_codes": Int(2, 2**16),
        "code_dim": Int(1, 4096),
        "base_channels": Int(1, 2**16),
        "num_downsamples": Int(1, MAX_SIDE.bit_length() - 1),
        "res_blocks": Int(0, 16),
        "commitment": Float(0.0, 100.0),
        "decay": Float(0.0, 0.99999),
        "prior_width": Int(1, 2**14),
        "prior_layers": Int(1, 64),
        "prior_heads": Int(1, 256),
    }
    """The type and range of each ``__init__`` argument, checked before a model from outside is built."""

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        num_codes: int = 256,
        code_dim: int = 32,
        base_channels: int = 64,
        num_downsamples: int = 2,
        res_blocks: int = 2,
        commitment: float = 0.25,
        decay: float = 0.99,
        prior_width: int = 128,
        prior_layers: int = 4,
        prior_heads: int = 4,
    ) -> None:
        super().__init__()
        self._image_shape = check_image_shape(image_shape)
        check_positive_int("num_codes", num_codes)
        check_positive_int("code_dim", code_dim)
        if not (isinstance(commitment, (int, float)) and 0 < commitment < math.inf):
            raise ValueError(f"commitment must be a positive number, got {commitment!r}")
        self.commitment = float(commitment)
        widths, (_, gh, gw) = conv_widths(self, base_channels, num_downsamples, res_blocks)
        self.grid, self.res_blocks = (gh, gw), res_blocks
        c = self._image_shape[0]

        encoder: list[nn.Module] = []
        for c_in, c_out in zip([c, *widths[:-1]], widths, strict=False):
            encoder += [Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            encoder += [ResidualBlock(c_out) for _ in range(res_blocks)]
        self.encoder = nn.Sequential(*encoder, nn.ReLU(), Conv2d(widths[-1], code_dim, 1))
        self.quantizer = VectorQuantizer(num_codes, code_dim, decay=decay)
        decoder: list[nn.Module] = [Conv2d(code_dim, widths[-1], 3, padding=1)]
        rev = widths[::-1]
        for c_in, c_out in zip(rev, [*rev[1:], c], strict=False):
            decoder += [ResidualBlock(c_in) for _ in range(res_blocks)]
            decoder += [nn.ReLU(), ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*decoder)  # logits; the sigmoid is applied where pixel means are wanted
        self.code_prior = CodePrior(num_codes, self.grid, prior_width, prior_layers, prior_heads)

    # --- properties -------------------------------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) shape of one image."""
        return self._image_shape

    @property
    def input_dim(self) -> int:
        """Number of values in one flattened image."""
        return math.prod(self._image_shape)

    @property
    def num_codes(self) -> int:
        """Codebook entries K."""
        return self.quantizer.num_codes

    @property
    def device(self) -> torch.device:
        """The device the weights are on."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights (inputs are cast to it)."""
        return next(self.parameters()).dtype

    @property
    def convolutional(self) -> bool:
        """Always true: the encoder and decoder are convolutional (channels-last pays on a CPU)."""
        return True

    @property
    def conditional(self) -> bool:
        """Always false: the VQ-VAE takes no class labels."""
        return False

    def check_input(self, x: Any) -> Tensor:
        """Check a batch of images (see ``BaseVAE.check_input``) and return it as (B, C, H, W) on the model's device."""
        x = check_images(x, self._image_shape, type(self).__name__)
        return x.to(device=self.device, dtype=self.dtype).reshape(-1, *self._image_shape)

    def check_codes(self, codes: Any) -> Tensor:
        """Check code grids: integer indices (B, h, w) in [0, num_codes), B >= 1."""
        name, (h, w) = type(self).__name__, self.grid
        expected = f"integer code grids of shape (B, {h}, {w}) with values in [0, {self.num_codes})"
        if not isinstance(codes, Tensor) or codes.is_floating_point() or codes.dtype == torch.bool:
            got = f"dtype {codes.dtype}" if isinstance(codes, Tensor) else type(codes).__name__
            raise ValueError(f"{name} expects {expected}, got {got}")
        if codes.ndim != 3 or tuple(codes.shape[1:]) != self.grid or codes.shape[0] == 0:
            raise ValueError(f"{name} expects {expected}, got shape {tuple(codes.shape)}")
        if bool(((codes < 0) | (codes >= self.num_codes)).any()):
            raise ValueError(f"{name} expects {expected}, got values in [{int(codes.min())}, {int(codes.max())}]")
        return codes.to(device=self.device, dtype=torch.long)

    # --- the model ----------------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> VQOutput:
        """Encode, snap to the codebook (updating it while training) and decode: ``x`` (B, C, H, W) in [0, 1]."""
        quantized = self.quantizer(self.encoder(x))
        return VQOutput(self.decoder(quantized.z_q), quantized)

    @torch.no_grad()
    def encode_codes(self, x: Tensor) -> Tensor:
        """The code grid of each image: (B, h, w) indices into the codebook."""
        return self.quantizer.nearest(self.encoder(self.check_input(x)))

    def _decode_codes(self, codes: Tensor) -> Tensor:
        z_q = self.quantizer.lookup(codes).to(self.dtype)
        return self.decoder(z_q)

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Pixel means (B, C, H, W) in [0, 1] of code grids (B, h, w)."""
        return torch.sigmoid(self._decode_codes(self.check_codes(codes)))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Any = None) -> Tensor:
        """The reconstruction: the decoder's mean at each image's code grid, in the layout of ``x``."""
        if labels is not None:
            raise ValueError("this VQVAE is not conditional: leave labels out")
        native = self.check_input(x)
        codes = self.quantizer.nearest(self.encoder(native))
        return torch.sigmoid(self._decode_codes(codes)).reshape(x.shape)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        labels: Any = None,
        prior: Any = None,
    ) -> Tensor:
        """New images: ``n`` code grids drawn from the learned prior, one code at a time, decoded.

        Args:
            n: How many images, >= 1.
            temperature: Divides the prior's logits, >= 0: below 1, more typical codes; 0 takes the likeliest.
            generator: The random generator of the draws.
            labels: Must be None (the VQ-VAE is not conditional).
            prior: Must be None: the codes come from the model's own learned prior.

        Returns:
            Images (n, C, H, W), pixel means in [0, 1].
        """
        check_positive_int("n", n)
        if not (isinstance(temperature, (int, float)) and 0 <= temperature < math.inf):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if labels is not None:
            raise ValueError("this VQVAE is not conditional: leave labels out")
        if prior is not None:
            raise ValueError("a VQVAE draws its code grids from its own learned prior: leave prior out")
        codes = self.code_prior.sample(n, temperature, generator)
        return torch.sigmoid(self._decode_codes(codes))

    @torch.no_grad()
    def nll_bound(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The two terms of −log p(x) ≤ −log p(x | c(x)) − log p(c(x)) of each image, in nats (see the module).

        Args:
            x: Images (B, C, H, W) or flat, in [0, 1].

        Returns:
            (the reconstruction term (B,), the prior's code length −log p(c(x)) (B,)).
        """
        native = self.check_input(x)
        codes = self.quantizer.nearest(self.encoder(native))
        recon = bernoulli_nll(self._decode_codes(codes).flatten(1).float(), native.flatten(1).float())
        return recon, -self.code_prior.log_prob(codes)

    @torch.no_grad()
    def perplexity(self, x: Tensor) -> float:
        """exp(entropy) of the codebook's usage over the code grids of ``x``: K when every entry is used equally."""
        return self.quantizer.perplexity(self.encode_codes(x))

    # --- Hub ----------------------------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        hub.save_model(self, save_directory, dict(self._hub_mixin_config or {}))

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, pretrained_model_name_or_path: str | Path, **kwargs: Any
    ) -> VQVAE:
        """Load a VQ-VAE saved with ``save_pretrained``, strictly and with the checks of ``BaseVAE.from_pretrained``
        (same keyword arguments)."""
        return cast(VQVAE, hub.load_model(pretrained_model_name_or_path, expected=cls, **kwargs))


hub.register(VQVAE)


def vq_loss(model: VQVAE, x: Tensor) -> VQLoss:
    """The first stage's objective: −log p(x | z_q) + β ‖z_e − sg(z_q)‖², summed over the batch.

    The codebook has no gradient here: it follows the encoder by moving averages (``VectorQuantizer.update``).
    """
    out = model(x)
    recon = bernoulli_nll(out.logits.flatten(1).float(), x.flatten(1).float())
    commitment = out.quantized.commitment
    loss = (recon + model.commitment * commitment).sum()
    return VQLoss(loss, recon.sum(), commitment.sum(), out.quantized.indices)
