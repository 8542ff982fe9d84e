"""The public API shared by every vae-hub model, written once.

A subclass defines ``_encode`` (native input -> ``(mu, logvar)``) and ``decoder``, an ``nn.Sequential`` from z
to pixel means in its native layout that ends in ``nn.Sigmoid``. Everything else is here: input checks, the
reparameterization trick, sampling from the prior, reconstruction, interpolation, latent traversals, the decoder
likelihood and Hub save/load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from . import hub
from .config_fields import Bool, Choice, Float, ImageShape, Int, Rule
from .losses import bernoulli_nll, gaussian_nll

LIKELIHOODS = ("bernoulli", "gaussian")  # the decoder's p(x|z)
# Sanity bounds for a config.json from outside; what a model may cost is bounded by its size (vae_hub.limits).
MAX_CHANNELS, MAX_SIDE, MAX_WIDTH = 16, 8192, 2**24
REPO_URL = "https://github.com/vae-hub/vae-hub"


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(image_shape)
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"image_shape must be three positive integers (C, H, W), got {image_shape!r}")
    return shape  # type: ignore[return-value]


class BaseVAE(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="vae-hub",
    license="mit",
    repo_url=REPO_URL,
    docs_url=REPO_URL,
    pipeline_tag="unconditional-image-generation",
    tags=["vae", "variational-autoencoder", "image-generation", "pytorch"],
):
    """Base class of vae-hub models: a Gaussian encoder q(z|x), a N(0, I) prior and a decoder p(x|z)."""

    config_rules: ClassVar[dict[str, Rule]] = {
        "image_shape": ImageShape(MAX_CHANNELS, MAX_SIDE),
        "latent_dim": Int(1, 2**16),
        "likelihood": Choice(LIKELIHOODS),
        "gaussian_std": Float(0.0, 1e6),
        "learn_std": Bool(),
    }
    """The type and range of each ``__init__`` argument, checked before a model from outside is built."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hub.register(cls)  # loadable by the class name that save_pretrained writes into config.json

    def _setup(
        self, image_shape: Sequence[int], latent_dim: int, likelihood: str, gaussian_std: float, learn_std: bool
    ) -> None:
        """Record the shapes and build the decoder likelihood; subclasses call this first in ``__init__``."""
        self._image_shape = check_image_shape(image_shape)
        self._latent_dim = check_positive_int("latent_dim", latent_dim)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        if likelihood == "gaussian":
            if not (isinstance(gaussian_std, (int, float)) and 0 < gaussian_std < math.inf):
                raise ValueError(f"gaussian_std must be a positive number, got {gaussian_std!r}")
            # One observation noise scale for all pixels, fixed or learned (as in the sigma-VAE).
            self.log_std = nn.Parameter(torch.tensor(math.log(gaussian_std)), requires_grad=bool(learn_std))

    # --- properties -------------------------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        """Number of latent dimensions."""
        return self._latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The (C, H, W) shape of one image."""
        return self._image_shape

    @property
    def input_dim(self) -> int:
        """Number of values in one flattened image."""
        c, h, w = self._image_shape
        return c * h * w

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # --- to be defined by each model ------------------------------------------------------------------------
    flat_input: ClassVar[bool] = False
    """Whether ``_encode`` takes flat (B, D) inputs and ``_decode`` returns them (the MLP), or images (B, C, H, W)."""

    def _encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    decoder: nn.Sequential

    def _decode_logits(self, z: Tensor) -> Tensor:
        """The decoder up to its final sigmoid."""
        h = z
        for layer in self.decoder[:-1]:
            h = layer(h)
        return h

    def _decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    # --- input checks ---------------------------------------------------------------------------------------
    def check_input(self, x: Any) -> Tensor:
        """Validate a batch of images and return it on the model's device and dtype, in the native layout.

        Accepted: a float tensor of shape (B, C, H, W) or (B, C*H*W) with values in [0, 1].
        """
        name = type(self).__name__
        c, h, w = self._image_shape
        expected = f"images of shape (B, {c}, {h}, {w}) or flat inputs of shape (B, {self.input_dim})"
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} expects a torch.Tensor of {expected}, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(
                f"{name} expects a floating-point tensor with values in [0, 1], got dtype {x.dtype} "
                "(for 8-bit images use x.float() / 255)"
            )
        is_image = x.ndim == 4 and tuple(x.shape[1:]) == self._image_shape
        is_flat = x.ndim == 2 and x.shape[1] == self.input_dim
        if not (is_image or is_flat):
            hint = " (add a batch dimension with x.unsqueeze(0))" if tuple(x.shape) == self._image_shape else ""
            raise ValueError(f"{name} expects {expected}, got shape {tuple(x.shape)}{hint}")
        if x.shape[0] == 0:
            raise ValueError(f"{name} got an empty batch (B=0); expected at least one image")
        lo, hi = torch.aminmax(x.detach())
        lo_v, hi_v = float(lo), float(hi)
        if not (lo_v >= 0.0 and hi_v <= 1.0):  # also catches NaN
            raise ValueError(
                f"{name} expects pixel values in [0, 1], got min {lo_v:.4g} and max {hi_v:.4g} "
                "(scale images to [0, 1]; NaN or inf values are not allowed)"
            )
        x = x.to(device=self.device, dtype=self.dtype)
        return x.flatten(1) if self.flat_input else x.reshape(-1, c, h, w)

    def check_latent(self, z: Any) -> Tensor:
        """Validate latent codes of shape (B, latent_dim) and return them on the model's device and dtype."""
        name = type(self).__name__
        if not isinstance(z, Tensor):
            raise TypeError(
                f"{name}.decode expects a torch.Tensor of shape (B, {self.latent_dim}), got {type(z).__name__}"
            )
        if not z.is_floating_point():
            raise ValueError(f"{name}.decode expects a floating-point latent tensor, got dtype {z.dtype}")
        if z.ndim != 2 or z.shape[1] != self.latent_dim or z.shape[0] == 0:
            raise ValueError(f"{name}.decode expects latents of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError(f"{name}.decode got NaN or inf in the latent codes")
        return z.to(device=self.device, dtype=self.dtype)

    def to_images(self, x: Tensor) -> Tensor:
        """Reshape a batch to (B, C, H, W)."""
        return x.reshape(-1, *self._image_shape)

    # --- the VAE --------------------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Parameters of q(z|x): the mean ``mu`` and log-variance ``logvar``, each (B, latent_dim)."""
        return self._encode(self.check_input(x))

    def reparameterize(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): the sample is differentiable in mu and logvar."""
        std = torch.exp(0.5 * logvar)
        if generator is None:
            eps = torch.randn_like(std)
        else:
            eps = torch.randn(std.shape, generator=generator, device=std.device, dtype=std.dtype)
        return mu + eps * std

    def decode(self, z: Tensor) -> Tensor:
        """Mean of p(x|z), in [0, 1]: flat (B, D) for the MLP model, images (B, C, H, W) otherwise."""
        return self._decode(self.check_latent(z))

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, return_logits: bool = False, samples: int = 0
    ) -> tuple[Tensor, ...]:
        """Encode, sample z with the reparameterization trick, decode: ``(recon_x, mu, logvar)``.

        ``recon_x`` has the same layout as ``x``; with ``return_logits=True`` it is the decoder's output before the
        final sigmoid (what the losses use). With ``samples=k`` (k >= 1) each image gets k draws of z, decoded
        together: ``(recon_x, mu, logvar, z)`` with ``recon_x`` of shape (k, *x.shape) and ``z`` (k, B, latent_dim),
        which the importance-weighted bound needs (``losses.iwae``).
        """
        mu, logvar = self.encode(x)
        if samples:
            check_positive_int("samples", samples)
            z = self.reparameterize(mu.expand(samples, *mu.shape), logvar.expand(samples, *mu.shape), generator)
            flat = z.reshape(-1, self.latent_dim)
            recon_x = self._decode_logits(flat) if return_logits else self._decode(flat)
            return recon_x.reshape(samples, *x.shape), mu, logvar, z
        z = self.reparameterize(mu, logvar, generator=generator)
        recon_x = self._decode_logits(z) if return_logits else self._decode(z)
        return recon_x.reshape(x.shape), mu, logvar

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """-log p(x|z) in nats from decoder logits, for flattened tensors (..., D), summed over the last dimension."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(logits, x)
        return gaussian_nll(torch.sigmoid(logits), x, self.log_std)

    # --- using a trained model ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Decode ``n`` draws from the prior N(0, temperature^2 I): images (n, C, H, W)."""
        check_positive_int("n", n)
        if not (isinstance(temperature, (int, float)) and 0 <= temperature < math.inf):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device, dtype=self.dtype)
        return self.to_images(self._decode(z * temperature))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decoder mean at the posterior mean, in the layout of ``x``."""
        mu, _ = self.encode(x)
        return self._decode(mu).reshape(x.shape)

    @torch.no_grad()
    def interpolate(self, x_a: Tensor, x_b: Tensor, steps: int = 8, method: str = "slerp") -> Tensor:
        """Decode a path between the posterior means of ``x_a`` and ``x_b``: images (B, steps, C, H, W).

        ``method`` is ``"lerp"`` (straight line) or ``"slerp"`` (great circle, better suited to a Gaussian prior).
        """
        check_positive_int("steps", steps)
        if method not in ("lerp", "slerp"):
            raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")
        za, _ = self.encode(x_a)
        zb, _ = self.encode(x_b)
        if za.shape != zb.shape:
            raise ValueError(f"x_a and x_b must hold the same number of images, got {za.shape[0]} and {zb.shape[0]}")
        t = torch.linspace(0, 1, steps, device=za.device, dtype=za.dtype)
        path = slerp(za, zb, t) if method == "slerp" else lerp(za, zb, t)  # (B, steps, D)
        images = self.to_images(self._decode(path.reshape(-1, self.latent_dim)))
        return images.reshape(za.shape[0], steps, *self._image_shape)

    @torch.no_grad()
    def traverse(self, x_or_z: Tensor, dim: int, values: Sequence[float] | Tensor) -> Tensor:
        """Vary latent ``dim`` over ``values`` from a starting code: images (B, len(values), C, H, W).

        ``x_or_z`` is either latent codes (B, latent_dim) or images, which are encoded to their posterior mean.
        """
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < self.latent_dim:
            raise ValueError(f"dim must be an integer in [0, {self.latent_dim}), got {dim!r}")
        is_latent = isinstance(x_or_z, Tensor) and x_or_z.ndim == 2 and x_or_z.shape[1] == self.latent_dim
        z = self.check_latent(x_or_z) if is_latent else self.encode(x_or_z)[0]
        v = torch.as_tensor(values, device=z.device, dtype=z.dtype).flatten()
        if v.numel() == 0 or not torch.isfinite(v).all():
            raise ValueError("values must be a non-empty sequence of finite numbers")
        codes = z[:, None, :].repeat(1, v.numel(), 1)
        codes[:, :, dim] = v
        images = self.to_images(self._decode(codes.reshape(-1, self.latent_dim)))
        return images.reshape(z.shape[0], v.numel(), *self._image_shape)

    # --- Hub ------------------------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        hub.save_model(self, save_directory, dict(self._hub_mixin_config or {}))

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        map_location: str | torch.device = "cpu",
        max_bytes: int | None = None,
    ) -> BaseVAE:
        """Load a model saved with ``save_pretrained`` from a local folder or a Hub repo id; loading is strict.

        Everything is checked before anything is allocated; a model whose weights take more than ``max_bytes``
        (default: ``VAE_HUB_MAX_MODEL_MB`` megabytes, else 2048) is refused. Raises :class:`CheckpointError`.
        """
        model = hub.load_model(
            pretrained_model_name_or_path,
            expected=None if cls is BaseVAE else cls,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            map_location=map_location,
            max_bytes=max_bytes,
        )
        return cast(BaseVAE, model)


def from_pretrained(name_or_path: str | Path, **kwargs: Any) -> BaseVAE:
    """Load any vae-hub model from a local folder or a Hub repo id, whichever class saved it.

    Keyword arguments: ``revision``, ``token``, ``cache_dir``, ``force_download``, ``local_files_only``,
    ``map_location``, ``max_bytes`` (the size limit, see :meth:`BaseVAE.from_pretrained`). Raises
    :class:`~vae_hub.errors.CheckpointError` on any problem.
    """
    return BaseVAE.from_pretrained(name_or_path, **kwargs)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Straight-line interpolation: (B, D), (B, D), (T,) -> (B, T, D)."""
    t = t[None, :, None]
    return (1 - t) * a[:, None, :] + t * b[:, None, :]


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation (falls back to lerp for nearly parallel codes): -> (B, T, D)."""
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    omega = torch.arccos(cos.clamp(-1 + eps, 1 - eps))[:, None, None]  # (B, 1, 1)
    so = torch.sin(omega)
    t = t[None, :, None]
    out = (torch.sin((1 - t) * omega) * a[:, None, :] + torch.sin(t * omega) * b[:, None, :]) / so
    parallel = (so.abs() < 1e-4).expand_as(out)
    return torch.where(parallel, lerp(a, b, t[0, :, 0]), out)
