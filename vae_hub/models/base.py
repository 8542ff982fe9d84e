"""The public API shared by every vae-hub model, written once.

A subclass defines ``encoder_backbone`` (native input -> features), the ``fc_mu`` / ``fc_logvar`` heads and
``decoder``, an ``nn.Sequential`` from z to pixel means in its native layout that ends in ``nn.Sigmoid``; a model
with more than one latent layer (``HierarchicalVAE``) overrides ``_encode``, ``_decode_posterior``, ``_decode`` and
``_generate`` instead. Everything else is here: input checks, the reparameterization trick, the prior (N(0, I) or
the VampPrior) and sampling from it, reconstruction, interpolation, latent traversals, the decoder likelihood and
Hub save/load.

A conditional VAE (``num_classes`` > 0) models q(z|x, y) and p(x|z, y): the one-hot label y is appended to the
encoder's features before its heads and to z before the decoder. Every method then takes ``labels``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from ..errors import UnsupportedModelError
from ..hub import save_load as hub
from ..hub.config_rules import Bool, Choice, Float, ImageShape, Int, Names, Rule
from ..limits import MAX_IMAGE_SIDE
from .initialization import normal_values
from .mixture import GaussianMixture
from .objectives import bernoulli_nll, gaussian_nll
from .posterior import (
    DiagonalGaussian,
    diagonal_normal_log_prob_each,
    diagonal_normal_terms,
    standard_normal_log_prob,
)

LIKELIHOODS = ("bernoulli", "gaussian")  # the decoder's p(x|z)
PRIORS = ("standard", "vamp")  # p(z): N(0, I), or the VampPrior (the posteriors of learned pseudo-inputs, mixed)
# Sanity bounds for a config.json from outside; what a model may cost is bounded by its size (vae_hub.limits).
MAX_CHANNELS, MAX_SIDE, MAX_WIDTH, MAX_CLASSES = 16, MAX_IMAGE_SIDE, 2**24, 100_000
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


def check_images(x: Any, image_shape: tuple[int, int, int], name: str) -> Tensor:
    """Check a batch of images for a model named ``name``: a float tensor (B, C, H, W) or (B, C·H·W) in [0, 1].

    Returns:
        ``x`` itself.

    Raises:
        TypeError: For something that is not a tensor.
        ValueError: For a wrong shape, a non-float dtype, an empty batch, or values outside [0, 1] (NaN included),
            saying what was expected.
    """
    c, h, w = image_shape
    input_dim = c * h * w
    expected = f"images of shape (B, {c}, {h}, {w}) or flat inputs of shape (B, {input_dim})"
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a torch.Tensor of {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} expects a floating-point tensor with values in [0, 1], got dtype {x.dtype} "
            "(for 8-bit images use x.float() / 255)"
        )
    is_image = x.ndim == 4 and tuple(x.shape[1:]) == image_shape
    is_flat = x.ndim == 2 and x.shape[1] == input_dim
    if not (is_image or is_flat):
        hint = " (add a batch dimension with x.unsqueeze(0))" if tuple(x.shape) == image_shape else ""
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
    return x


@dataclass(frozen=True)
class Decoded:
    """What the decoder gives at codes drawn from a posterior: the logits and, for a hierarchical model, the terms of
    the lower layers it drew on the way (see ``ForwardOutput``); None for a one-layer model.

    An autoregressive decoder's logits read the image's own pixels (the likelihood's terms); its ``state`` is what
    ``BaseVAE.decoded_means`` decodes pixel by pixel into the images those codes give.
    """

    logits: Tensor
    lower_kl: Tensor | None = None
    lower_log_ratio: Tensor | None = None
    state: Tensor | None = None


@dataclass(frozen=True)
class ForwardOutput:
    """What ``model(x)`` returns: the decoder's logits at a code drawn from q(z|x), that posterior, and the code.

    ``logits`` (before the decoder's final sigmoid) has the layout of ``x``, with a leading k for ``samples=k``;
    ``z`` is (B, latent_dim), or (k, B, latent_dim). It unpacks (and indexes) as ``recon_x, mu, logvar = model(x)``,
    as in the classic PyTorch VAE example.
    """

    logits: Tensor
    posterior: DiagonalGaussian
    z: Tensor
    lower_kl: Tensor | None = None
    """A hierarchical model's lower layers: KL(q ‖ p) of each latent group, (B, G) or (k, B, G); else None."""
    lower_log_ratio: Tensor | None = None
    """A hierarchical model's log p(z_lower | z_upper) − log q(z_lower | x, z_upper) at the draws, (B,) or (k, B)."""

    @property
    def recon_x(self) -> Tensor:
        """The reconstruction: the decoder's pixel means in [0, 1]."""
        return torch.sigmoid(self.logits)

    def __iter__(self) -> Iterator[Tensor]:
        return iter((self.recon_x, self.posterior.mean, self.posterior.logvar))

    def __getitem__(self, index: int) -> Tensor:
        return (self.recon_x, self.posterior.mean, self.posterior.logvar)[index]


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
        "num_classes": Int(0, MAX_CLASSES),
        "class_names": Names(MAX_CLASSES),
        "deterministic": Bool(),
        "prior": Choice(PRIORS),
        "pseudo_inputs": Int(1, 100_000),
    }
    """The type and range of each ``__init__`` argument, checked before a model from outside is built."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hub.register(cls)  # loadable by the class name that save_pretrained writes into config.json

    def _setup(
        self,
        image_shape: Sequence[int],
        latent_dim: int,
        likelihood: str,
        gaussian_std: float,
        learn_std: bool,
        num_classes: int = 0,
        class_names: Sequence[str] | None = None,
        deterministic: bool = False,
        prior: str = "standard",
        pseudo_inputs: int = 500,
    ) -> None:
        """Record the shapes, the classes, the decoder likelihood and the prior; subclasses call this first.

        ``deterministic=True`` makes a plain (*traditional*) autoencoder: z = encoder(x) (the mean head), no
        sampling and no KL term in training; its log-variance head is kept but unused, so it shares the VAE's
        architecture, API and files. ``prior="vamp"`` makes p(z) the VampPrior (Tomczak & Welling, 2018):
        (1/K) Σ_k q(z | u_k) over ``pseudo_inputs`` = K learned images u_k, trained with the rest.
        """
        self._image_shape = check_image_shape(image_shape)
        self._latent_dim = check_positive_int("latent_dim", latent_dim)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an integer >= 0 (0: not conditional), got {num_classes!r}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but num_classes is {num_classes}")
        self.num_classes = num_classes
        if not isinstance(deterministic, bool):
            raise ValueError(f"deterministic must be true or false, got {deterministic!r}")
        self.deterministic = deterministic
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        if likelihood == "gaussian":
            if not (isinstance(gaussian_std, (int, float)) and 0 < gaussian_std < math.inf):
                raise ValueError(f"gaussian_std must be a positive number, got {gaussian_std!r}")
            # One observation noise scale for all pixels, fixed or learned (as in the sigma-VAE).
            self.log_std = nn.Parameter(torch.tensor(math.log(gaussian_std)), requires_grad=bool(learn_std))
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        self.prior = prior
        if prior == "vamp":
            if num_classes or deterministic:
                raise ValueError("prior='vamp' is for an unconditional VAE: leave num_classes at 0, deterministic off")
            check_positive_int("pseudo_inputs", pseudo_inputs)
            # The pseudo-inputs' logits: u_k = sigmoid(.) is an image in [0, 1], as the encoder expects.
            self.pseudo_inputs = nn.Parameter(normal_values(0.1, pseudo_inputs, *self._image_shape))

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
    def conditional(self) -> bool:
        """Whether the model is conditioned on class labels (``num_classes`` > 0)."""
        return self.num_classes > 0

    @property
    def convolutional(self) -> bool:
        """Whether the model has convolutions (which run fastest on a CPU in channels-last layout)."""
        return any(isinstance(m, nn.modules.conv._ConvNd) for m in self.modules())

    @property
    def input_dim(self) -> int:
        """Number of values in one flattened image."""
        c, h, w = self._image_shape
        return c * h * w

    @property
    def device(self) -> torch.device:
        """The device the weights are on."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights (inputs are cast to it)."""
        return next(self.parameters()).dtype

    # --- to be defined by each model ------------------------------------------------------------------------
    flat_input: ClassVar[bool] = False
    """Whether ``_encode`` takes flat (B, D) inputs and ``_decode`` returns them (the MLP), or images (B, C, H, W)."""

    encoder_backbone: nn.Module
    fc_mu: nn.Linear
    fc_logvar: nn.Linear
    decoder: nn.Sequential

    def _with_labels(self, h: Tensor, labels: Tensor | None) -> Tensor:
        """``h`` with the one-hot labels appended (conditional models); ``h`` itself otherwise."""
        if not self.num_classes:
            return h
        return torch.cat([h, nn.functional.one_hot(labels, self.num_classes).to(h)], dim=-1)

    def _encode(self, x: Tensor, labels: Tensor | None = None) -> DiagonalGaussian:
        h = self._with_labels(self.encoder_backbone(x), labels)
        return DiagonalGaussian(self.fc_mu(h), self.fc_logvar(h), self.deterministic)

    def _decode_logits(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """The decoder up to its final sigmoid."""
        h = self._with_labels(z, labels)
        for layer in self.decoder[:-1]:
            h = layer(h)
        return h

    def _decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.decoder(self._with_labels(z, labels))

    def _decode_posterior(
        self,
        z: Tensor,
        posterior: DiagonalGaussian,
        labels: Tensor | None = None,
        *,
        draw: bool = True,
        generator: torch.Generator | None = None,
    ) -> Decoded:
        """The decoder's logits at top codes ``z`` (N, latent_dim) drawn from ``posterior`` (B images, N = S·B in
        sample-major order); a hierarchical model also infers its lower layers from the posterior's ``features``,
        drawing them (``draw``) or taking their means."""
        return Decoded(self._decode_logits(z, labels))

    def decoded_means(self, out: Decoded) -> Tensor:
        """The pixel means, in [0, 1], that ``out`` (from ``_decode_posterior``) decodes to, in its logits' layout."""
        return torch.sigmoid(out.logits)

    def _generate(
        self, z: Tensor, labels: Tensor | None, temperature: float, generator: torch.Generator | None
    ) -> Tensor:
        """Pixel means for prior draws ``z`` of the top layer; a hierarchical model draws its lower layers too."""
        return self._decode(z, labels)

    # --- the prior p(z) -------------------------------------------------------------------------------------
    def prior_components(self) -> DiagonalGaussian:
        """The VampPrior's K components q(z | u_k): the encoder's posteriors of the pseudo-inputs u_k.

        Returns:
            A ``DiagonalGaussian`` of K codes, in fp32.

        Raises:
            ValueError: For a model whose prior is N(0, I).
        """
        if self.prior != "vamp":
            raise ValueError(f"this {type(self).__name__}'s prior is N(0, I), which has no components")
        images = torch.sigmoid(self.pseudo_inputs)
        return self._encode(images.flatten(1) if self.flat_input else images).float()

    def prior_log_prob(self, z: Tensor, components: DiagonalGaussian | None = None) -> Tensor:
        """log p(z) under the model's prior: N(0, I), or the VampPrior's log (1/K) Σ_k q(z | u_k).

        Args:
            z: Codes (..., latent_dim).
            components: ``prior_components()``, when the caller has them already.

        Returns:
            Nats, (...).
        """
        if self.prior == "standard":
            return standard_normal_log_prob(z)
        q = components if components is not None else self.prior_components()
        log_k = diagonal_normal_log_prob_each(z, q.mean, q.logvar)  # (..., K)
        return torch.logsumexp(log_k, dim=-1) - math.log(q.mean.shape[0])

    def kl_to_prior(self, posterior: DiagonalGaussian, z: Tensor) -> tuple[Tensor, Tensor]:
        """KL(q(z|x) ‖ p(z)) of each image, and its share per latent dimension.

        For N(0, I) both are exact (closed form). The VampPrior has no closed form: the KL is the one-sample
        estimate log q(z|x) − log p(z) at the draw ``z`` (Tomczak & Welling, 2018), and each dimension's figure is
        KL(q(z_d|x) ‖ p(z_d)) to the prior's marginal, estimated the same way (the dimensions' figures then need
        not add up to the KL, since the mixture does not factorise).

        Args:
            posterior: q(z|x) of B images.
            z: Draws from it, (B, latent_dim) or (S, B, latent_dim).

        Returns:
            (KL per image (B,) or (S, B), per dimension (B, latent_dim) or (S, B, latent_dim)), in nats.
        """
        if self.prior == "standard" or posterior.deterministic:
            per_dim = posterior.kl_per_dim().expand(z.shape)
            return per_dim.sum(-1), per_dim
        q = self.prior_components()
        z, log_k = z.float(), math.log(q.mean.shape[0])
        log_q = diagonal_normal_terms(z, posterior.mean.float(), posterior.logvar.float())  # (..., B, D)
        terms = diagonal_normal_terms(z.unsqueeze(-2), q.mean, q.logvar)  # (..., B, K, D)
        per_dim = log_q - (torch.logsumexp(terms, dim=-2) - log_k)
        return log_q.sum(-1) - (torch.logsumexp(terms.sum(-1), dim=-1) - log_k), per_dim

    def prior_sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Codes drawn from the model's prior: N(0, temperature² I), or a VampPrior component chosen at random.

        Args:
            n: How many codes.
            temperature: Scales the spread (of each component, for the VampPrior).
            generator: The random generator of the draws.

        Returns:
            (n, latent_dim), in the model's dtype.
        """
        if self.prior == "standard":
            z = torch.randn(n, self.latent_dim, generator=generator, device=self.device, dtype=self.dtype)
            return z * temperature
        q = self.prior_components()
        k = torch.randint(q.mean.shape[0], (n,), generator=generator, device=self.device)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=self.device, dtype=q.mean.dtype)
        return (q.mean[k] + temperature * q.std[k] * eps).to(self.dtype)

    # --- input checks ---------------------------------------------------------------------------------------
    def check_input(self, x: Any) -> Tensor:
        """Check a batch of images, and bring it to the model's device, dtype and native layout.

        Args:
            x: A float tensor (B, C, H, W) or (B, C·H·W) with values in [0, 1], B >= 1.

        Returns:
            The batch, flat (B, D) for the MLP, (B, C, H, W) for the ConvVAE.

        Raises:
            TypeError: For something that is not a tensor.
            ValueError: For a wrong shape, a non-float dtype, an empty batch, or values outside [0, 1] (NaN included),
                saying what was expected.
        """
        x = check_images(x, self._image_shape, type(self).__name__).to(device=self.device, dtype=self.dtype)
        return x.flatten(1) if self.flat_input else x.reshape(-1, *self._image_shape)

    def check_latent(self, z: Any) -> Tensor:
        """Check latent codes, and bring them to the model's device and dtype.

        Args:
            z: A float tensor (B, latent_dim) of finite values, B >= 1.

        Returns:
            The codes.

        Raises:
            TypeError: For something that is not a tensor.
            ValueError: For a wrong shape or dtype, or NaN / inf values.
        """
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

    def check_labels(self, labels: Any, n: int) -> Tensor | None:
        """Class indices for ``n`` images, from what a caller passed as ``labels``.

        Args:
            labels: One class (an index or a name) for all, or one per image (a sequence or a tensor); None for an
                unconditional model.
            n: The number of images.

        Returns:
            (n,) int64 indices on the model's device; None for an unconditional model.

        Raises:
            ValueError: For labels given to an unconditional model, missing for a conditional one, unknown classes,
                or the wrong count.
        """
        name = type(self).__name__
        if not self.num_classes:
            if labels is not None:
                raise ValueError(f"this {name} is not conditional (num_classes=0): leave labels out")
            return None
        shown = ", ".join(self.class_names[:10]) + (", ..." if self.num_classes > 10 else "")
        expected = f"a class index in [0, {self.num_classes}) or a class name ({shown}), or one per image"
        if labels is None:
            raise ValueError(f"this {name} is conditional on {self.num_classes} classes: pass labels= {expected}")
        if isinstance(labels, Tensor):
            if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
                raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
            flat = labels.flatten()
            if flat.numel() in (1, n) and bool(((flat >= 0) & (flat < self.num_classes)).all()):
                return flat.to(device=self.device, dtype=torch.long).expand(n)  # checked without a Python loop
            values = flat.tolist()
        else:
            values = [labels] if isinstance(labels, (int, str)) else list(labels)
        index = {c: i for i, c in enumerate(self.class_names)}
        out = []
        for v in values:
            if isinstance(v, str) and v in index:
                out.append(index[v])
            elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < self.num_classes:
                out.append(v)
            else:
                raise ValueError(f"labels: {v!r} is not a class of this {name}; expected {expected}")
        if len(out) == 1:
            out = out * n
        if len(out) != n:
            raise ValueError(f"labels: got {len(out)} labels for {n} images; expected one, or one per image")
        return torch.tensor(out, dtype=torch.long, device=self.device)

    def to_images(self, x: Tensor) -> Tensor:
        """Reshape a batch to images.

        Args:
            x: (B, C·H·W) or (B, C, H, W).

        Returns:
            (B, C, H, W).
        """
        return x.reshape(-1, *self._image_shape)

    # --- the VAE --------------------------------------------------------------------------------------------
    def encode(self, x: Tensor, labels: Any = None) -> DiagonalGaussian:
        """The approximate posterior q(z|x), or q(z|x, y) for a conditional model.

        Args:
            x: Images (B, C, H, W) or flat (B, C·H·W), floats in [0, 1].
            labels: A conditional model's classes: an index or a name for all, or one per image.

        Returns:
            A ``DiagonalGaussian`` whose ``mean`` and ``logvar`` are (B, latent_dim); it unpacks as
            ``mu, logvar = model.encode(x)``.

        Raises:
            ValueError: For a wrong shape, a non-float dtype, values outside [0, 1] or an empty batch.
        """
        x = self.check_input(x)
        return self._encode(x, self.check_labels(labels, x.shape[0]))

    def reparameterize(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The reparameterization trick: z = mu + sigma * eps with eps ~ N(0, I), differentiable in mu and logvar.

        Args:
            mu: Posterior means (B, latent_dim).
            logvar: Posterior log-variances (B, latent_dim), natural log.
            generator: The random generator of eps (default: torch's global one).

        Returns:
            Codes z (B, latent_dim); ``mu`` itself for a deterministic autoencoder.
        """
        return DiagonalGaussian(mu, logvar, self.deterministic).sample(generator=generator)

    def decode(self, z: Tensor, labels: Any = None) -> Tensor:
        """The decoder's mean of p(x|z), or p(x|z, y) for a conditional model.

        Args:
            z: Latent codes (B, latent_dim), finite floats.
            labels: A conditional model's classes (an index or a name for all, or one per image).

        Returns:
            Pixel means in [0, 1]: flat (B, C·H·W) for the MLP VAE (as in the classic example), (B, C, H, W)
            for the ConvVAE.
        """
        z = self.check_latent(z)
        return self._decode(z, self.check_labels(labels, z.shape[0]))

    def decode_logits(self, z: Tensor, labels: Any = None) -> Tensor:
        """The decoder's output before its final sigmoid: what the likelihood takes.

        Args:
            z: Latent codes (B, latent_dim).
            labels: A conditional model's classes.

        Returns:
            Logits in the layout of ``decode``; ``torch.sigmoid`` of them is ``decode(z)``.
        """
        z = self.check_latent(z)
        return self._decode_logits(z, self.check_labels(labels, z.shape[0]))

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, samples: int | None = None, labels: Any = None
    ) -> ForwardOutput:
        """Encode, draw z from q(z|x) with the reparameterization trick, decode.

        Args:
            x: Images (B, C, H, W) or flat (B, C·H·W), floats in [0, 1].
            generator: The random generator of the draws of z.
            samples: k draws of z per image, decoded together (the importance-weighted bound needs them); None
                for one draw.
            labels: A conditional model's classes.

        Returns:
            A ``ForwardOutput``: ``logits`` in the layout of ``x`` (with a leading k for ``samples=k``), the
            ``posterior`` and the codes ``z`` (B, latent_dim) or (k, B, latent_dim). It unpacks as
            ``recon_x, mu, logvar = model(x)``.
        """
        native = self.check_input(x)
        y = self.check_labels(labels, native.shape[0])
        posterior = self._encode(native, y)
        if samples is None:
            z = posterior.sample(generator=generator)
            out = self._decode_posterior(z, posterior, y, generator=generator)
            return ForwardOutput(out.logits.reshape(x.shape), posterior, z, out.lower_kl, out.lower_log_ratio)
        check_positive_int("samples", samples)
        z = posterior.sample(samples, generator=generator)
        y = y.repeat(samples) if y is not None else None
        out = self._decode_posterior(z.reshape(-1, self.latent_dim), posterior, y, generator=generator)
        batch = native.shape[0]
        kl = out.lower_kl.reshape(samples, batch, -1) if out.lower_kl is not None else None
        ratio = out.lower_log_ratio.reshape(samples, batch) if out.lower_log_ratio is not None else None
        return ForwardOutput(out.logits.reshape(samples, *x.shape), posterior, z, kl, ratio)

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        """The reconstruction term -log p(x|z) of the model's likelihood (Bernoulli or Gaussian).

        Args:
            logits: Decoder logits (..., D), flattened.
            x: The images, flattened to (..., D), in [0, 1].

        Returns:
            Nats, summed over the last dimension: shape (...).
        """
        if self.likelihood == "bernoulli":
            return bernoulli_nll(logits, x)
        return gaussian_nll(torch.sigmoid(logits), x, self.log_std)

    def observe(self, means: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A true sample x ~ p(x|z), where the reconstructions show its mean (the average of such draws: blurry).

        Args:
            means: The decoder's means (any shape), in [0, 1], as ``decode`` returns them.
            generator: The random generator of the draw.

        Returns:
            The same shape: Bernoulli pixels (0 or 1) for a Bernoulli decoder; the mean plus Gaussian noise of the
            decoder's std, clipped to [0, 1], for a Gaussian one.
        """
        if self.likelihood == "bernoulli":
            return torch.bernoulli(means.clamp(0, 1), generator=generator)
        noise = torch.randn(means.shape, generator=generator, device=means.device, dtype=means.dtype)
        return (means + noise * self.log_std.exp()).clamp(0, 1)

    # --- using a trained model ------------------------------------------------------------------------------
    @torch.no_grad()
    def observe_reconstruction(self, x: Tensor, labels: Any = None, generator: torch.Generator | None = None) -> Tensor:
        """A true sample x' ~ p(x|z) at each image's posterior mean: the draws that ``reconstruct`` averages.

        Args:
            x: Images (B, C, H, W) or flat (B, C·H·W), floats in [0, 1].
            labels: A conditional model's classes.
            generator: The random generator of the draw.

        Returns:
            ``observe`` of the reconstruction, in the layout of ``x``; an autoregressive decoder draws each pixel
            in turn, reading the pixels drawn before it.
        """
        return self.observe(self.reconstruct(x, labels), generator)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        labels: Any = None,
        prior: GaussianMixture | None = None,
    ) -> Tensor:
        """New images: ``n`` draws from the model's prior (N(0, temperature² I), or the VampPrior with each
        component's spread scaled by ``temperature``), or from ``prior``, decoded.

        Args:
            n: How many images, >= 1.
            temperature: The prior's scale, >= 0: below 1, cleaner and less varied samples; 0 decodes z = 0
                (with ``prior``: each component's mean).
            generator: The random generator of the draws (pass a seeded one for repeatable samples).
            labels: A conditional model's class(es) to draw: one for all, or one per image.
            prior: A mixture fitted to the model's codes (``vae_hub.evaluation.fit_code_mixture``) to draw z
                from instead of N(0, I): draws land where the training images' codes are, not in the gaps
                between them; the way to sample a plain autoencoder.

        Returns:
            Images (n, C, H, W), pixel means in [0, 1].
        """
        check_positive_int("n", n)
        if not (isinstance(temperature, (int, float)) and 0 <= temperature < math.inf):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        y = self.check_labels(labels, n)
        if prior is None:
            z = self.prior_sample(n, temperature, generator)
        elif prior.means.shape[1] != self.latent_dim:
            raise ValueError(
                f"the mixture has {prior.means.shape[1]}-D codes, the model a {self.latent_dim}-D latent space"
            )
        else:
            where = generator.device if generator is not None else self.device  # draws where the generator is
            z = prior.to(where).sample(n, temperature, generator=generator).to(self.device, self.dtype)
        return self.to_images(self._generate(z, y, temperature, generator))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Any = None) -> Tensor:
        """The reconstruction: the decoder's mean at the posterior mean of each image.

        Args:
            x: Images (B, C, H, W) or flat (B, C·H·W), floats in [0, 1].
            labels: A conditional model's classes.

        Returns:
            Pixel means in [0, 1], in the layout of ``x``.
        """
        native = self.check_input(x)
        y = self.check_labels(labels, native.shape[0])
        posterior = self._encode(native, y)
        logits = self._decode_posterior(posterior.mode(), posterior, y, draw=False).logits
        return torch.sigmoid(logits).reshape(x.shape)

    @torch.no_grad()
    def interpolate_classes(self, z: Tensor, label_a: Any, label_b: Any, steps: int = 8) -> Tensor:
        """Decode fixed codes while the class moves from ``label_a`` to ``label_b`` (conditional models only).

        Args:
            z: Latent codes (B, latent_dim), kept fixed.
            label_a: The first class (an index or a name).
            label_b: The last class.
            steps: Images along the way, >= 1; the one-hot input is blended, (1 - t) y_a + t y_b.

        Returns:
            Images (B, steps, C, H, W) in [0, 1].
        """
        check_positive_int("steps", steps)
        if not self.num_classes:
            raise ValueError(f"interpolate_classes needs a conditional model; this {type(self).__name__} is not")
        z = self.check_latent(z)
        eye = torch.eye(self.num_classes, device=z.device, dtype=z.dtype)
        ya, yb = (eye[self.check_labels(lab, 1)[0]] for lab in (label_a, label_b))
        t = torch.linspace(0, 1, steps, device=z.device, dtype=z.dtype)[:, None]
        mix = (1 - t) * ya + t * yb  # (steps, K)
        codes = torch.cat([z[:, None, :].expand(-1, steps, -1), mix.expand(z.shape[0], -1, -1)], dim=-1)
        h = codes.reshape(-1, self.latent_dim + self.num_classes)
        images = self.to_images(self.decoder(h))
        return images.reshape(z.shape[0], steps, *self._image_shape)

    @torch.no_grad()
    def interpolate(
        self, x_a: Tensor, x_b: Tensor, steps: int = 8, method: str = "slerp", labels: Any = None
    ) -> Tensor:
        """Decode a path between the posterior means of two batches of images.

        Args:
            x_a: The start images (B, C, H, W) or flat, in [0, 1].
            x_b: The end images, as many as ``x_a``.
            steps: Images along each path (ends included), >= 1.
            method: ``"lerp"`` (a straight line) or ``"slerp"`` (a great circle: it keeps the codes' norm, as
                typical draws from a Gaussian prior have).
            labels: A conditional model's classes, for both ends.

        Returns:
            Images (B, steps, C, H, W) in [0, 1].
        """
        check_positive_int("steps", steps)
        if method not in ("lerp", "slerp"):
            raise ValueError(f"method must be 'lerp' or 'slerp', got {method!r}")
        za, zb = self.encode(x_a, labels).mode(), self.encode(x_b, labels).mode()
        if za.shape != zb.shape:
            raise ValueError(f"x_a and x_b must hold the same number of images, got {za.shape[0]} and {zb.shape[0]}")
        t = torch.linspace(0, 1, steps, device=za.device, dtype=za.dtype)
        path = slerp(za, zb, t) if method == "slerp" else lerp(za, zb, t)  # (B, steps, D)
        y = self.check_labels(labels, za.shape[0])
        y = y.repeat_interleave(steps) if y is not None else None
        images = self.to_images(self._decode(path.reshape(-1, self.latent_dim), y))
        return images.reshape(za.shape[0], steps, *self._image_shape)

    @torch.no_grad()
    def traverse(self, x_or_z: Tensor, dim: int, values: Sequence[float] | Tensor, labels: Any = None) -> Tensor:
        """A latent traversal: set one latent dimension to each of ``values``, keeping the others, and decode.

        Args:
            x_or_z: Starting codes (B, latent_dim), or images, which are encoded to their posterior mean.
            dim: The latent dimension to vary, in [0, latent_dim).
            values: The values it takes, finite numbers.
            labels: A conditional model's classes.

        Returns:
            Images (B, len(values), C, H, W) in [0, 1].
        """
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < self.latent_dim:
            raise ValueError(f"dim must be an integer in [0, {self.latent_dim}), got {dim!r}")
        is_latent = isinstance(x_or_z, Tensor) and x_or_z.ndim == 2 and x_or_z.shape[1] == self.latent_dim
        z = self.check_latent(x_or_z) if is_latent else self.encode(x_or_z, labels).mode()
        v = torch.as_tensor(values, device=z.device, dtype=z.dtype).flatten()
        if v.numel() == 0 or not torch.isfinite(v).all():
            raise ValueError("values must be a non-empty sequence of finite numbers")
        codes = z[:, None, :].repeat(1, v.numel(), 1)
        codes[:, :, dim] = v
        y = self.check_labels(labels, z.shape[0])
        y = y.repeat_interleave(v.numel()) if y is not None else None
        images = self.to_images(self._decode(codes.reshape(-1, self.latent_dim), y))
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
        """Load a model saved with ``save_pretrained`` from a local folder or a Hub repo id, strictly.

        The name, the config and the weights' header are checked before anything is allocated (see the Security
        page); called on a subclass, a checkpoint of another class is refused.

        Args:
            pretrained_model_name_or_path: A local folder or a Hub repo id (``"user/name"``).
            revision: A Hub branch, tag or commit.
            token: A Hub token (default: ``HF_TOKEN`` or the ``hf auth login`` cache).
            cache_dir: Where Hub downloads are cached.
            force_download: Download again even if cached.
            local_files_only: Never reach the network.
            map_location: The device to load onto; it must exist on this machine.
            max_bytes: The largest weights accepted, in bytes (default: ``VAE_HUB_MAX_MODEL_MB`` megabytes, else
                2048 MB).

        Returns:
            The model, in eval mode, of the class named in its ``config.json``.

        Raises:
            CheckpointError: For any problem, naming it; ``CheckpointNotFoundError`` for a missing folder, file or
                repo.
        """
        model = hub.load_model(
            pretrained_model_name_or_path,
            expected=cls,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            map_location=map_location,
            max_bytes=max_bytes,
        )
        return cast(BaseVAE, model)


def require_vae(model: nn.Module, where: str) -> BaseVAE:
    """Return ``model`` if it is a VAE (a ``BaseVAE``: MLP, ConvVAE, hierarchical); else say where it cannot be used.

    Raises:
        UnsupportedModelError: For another registered model, such as a ``VQVAE``.
    """
    if not isinstance(model, BaseVAE):
        raise UnsupportedModelError(
            f"{where} works with VAEs (VariationalAutoencoder, ConvVAE, HierarchicalVAE); this model is a "
            f"{type(model).__name__} (vae-hub sample and vae-hub evaluate take it; in Python: model.sample, "
            "model.reconstruct, model.nll_bound)"
        )
    return model


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Straight-line interpolation between codes.

    Args:
        a: Start codes (B, D).
        b: End codes (B, D).
        t: Positions (T,) in [0, 1].

    Returns:
        (B, T, D): (1 - t) a + t b.
    """
    t = t[None, :, None]
    return (1 - t) * a[:, None, :] + t * b[:, None, :]


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation between codes, along the great circle; lerp for nearly parallel codes.

    Args:
        a: Start codes (B, D).
        b: End codes (B, D).
        t: Positions (T,) in [0, 1].
        eps: Guards the angle's computation against zero norms.

    Returns:
        (B, T, D).
    """
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)
    omega = torch.arccos(cos.clamp(-1 + eps, 1 - eps))[:, None, None]  # (B, 1, 1)
    so = torch.sin(omega)
    t = t[None, :, None]
    out = (torch.sin((1 - t) * omega) * a[:, None, :] + torch.sin(t * omega) * b[:, None, :]) / so
    parallel = (so.abs() < 1e-4).expand_as(out)
    return torch.where(parallel, lerp(a, b, t[0, :, 0]), out)
