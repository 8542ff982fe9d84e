"""Model cards: the top-level ``MODEL_CARD.md`` template filled with a trained model's metadata and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.named_sets import DATASETS
from ..models.base import REPO_URL, BaseVAE
from ..models.vqvae import VQVAE

TEMPLATE = Path(__file__).resolve().parents[1] / "MODEL_CARD.md"  # vae_hub/MODEL_CARD.md, a link to the top-level one
TASK = "unconditional-image-generation"


def eval_results(metrics: dict[str, Any], dataset_id: str, dataset_name: str) -> list[EvalResult]:
    """The measured test metrics as ``model-index`` entries."""
    common = dict(task_type=TASK, dataset_type=dataset_id, dataset_name=dataset_name, dataset_split="test")
    if "nll_bound" in metrics:  # a VQ-VAE: no ELBO, KL or active units
        figures = [("recon", "Test reconstruction -log p(x|z_q) (nats/image)", metrics["recon"]),
                   ("nll_bound", "Test NLL upper bound: reconstruction + code length (nats/image)",
                    metrics["nll_bound"]),
                   ("perplexity", f"Codebook perplexity (of {metrics['num_codes']})",
                    metrics["perplexity"])]  # fmt: skip
        return [EvalResult(metric_type=t, metric_name=n, metric_value=round(v, 2), **common) for t, n, v in figures]
    results = [
        EvalResult(
            metric_type="elbo", metric_name="Test ELBO (nats/image)", metric_value=round(metrics["elbo"], 2), **common
        ),
        EvalResult(
            metric_type="kl", metric_name="Test KL (nats/image)", metric_value=round(metrics["kl"], 2), **common
        ),
        EvalResult(
            metric_type="active_units", metric_name="Active units", metric_value=metrics["active_units"], **common
        ),
    ]
    if "nll" in metrics:
        results.insert(
            1,
            EvalResult(
                metric_type="nll",
                metric_name=f"Test NLL, importance-sampled, k={metrics['nll_k']} (nats/image)",
                metric_value=round(metrics["nll"], 2),
                **common,
            ),
        )
    return results


@dataclass(frozen=True)
class DataFacts:
    """What a card says about the training data."""

    name: str  # a short name, also a tag for the named data sets
    display_name: str
    hub_id: str | None  # the dataset's Hub id, when there is one
    note: str  # the card's "Data:" line
    tag: str | None = None

    @classmethod
    def named(cls, dataset: str) -> DataFacts:
        info = DATASETS[dataset]
        note = f"the {info.display_name} training split; metrics on its test split."
        return cls(info.name, info.display_name, info.hub_id, note, tag=info.name)


def model_card(
    model: BaseVAE | VQVAE,
    metrics: dict[str, Any],
    *,
    data: DataFacts,
    hyperparameters: dict[str, Any],
    repo_id: str | None = None,
    model_name: str | None = None,
    dataset_note: str = "",
    extra_limitations: list[str] | None = None,
    has_curves: bool = True,
    trained_on: str = "",
    iw_samples: int = 1,
) -> ModelCard:
    """Render the model card for a trained model; ``trained_on`` says how long on what (e.g. "5.4 min on ...")."""
    display = data.display_name
    mixin = type(model)._hub_mixin_info.model_card_data
    name = model_name or (repo_id.split("/")[-1] if repo_id else f"{type(model).__name__.lower()}-{data.name}")
    card_data = ModelCardData(
        library_name="vae-hub",
        license="mit",
        tags=sorted(set(mixin.tags or []) | ({data.tag} if data.tag else set())),
        datasets=[data.hub_id] if data.hub_id else None,
        pipeline_tag=TASK,
        model_name=name,
        eval_results=eval_results(metrics, data.hub_id or data.name, display),
    )
    if isinstance(model, VQVAE):
        return ModelCard.from_template(
            card_data, template_str=TEMPLATE.read_text(encoding="utf-8"), vq=True, model_name=name,
            model_description="VQ-VAE (vector-quantised autoencoder, van den Oord et al. 2017)", repo_url=REPO_URL,
            repo_id=repo_id or "path/to/this/folder", dataset_name=display, grid="x".join(map(str, model.grid)),
            num_codes=model.num_codes, image_shape=", ".join(map(str, model.image_shape)), metrics=metrics,
            hyperparameters=hyperparameters, dataset_note=dataset_note or data.note,
            extra_limitations=extra_limitations or [], has_curves=has_curves, trained_on=trained_on,
        )  # fmt: skip
    description = {
        "VariationalAutoencoder": "multilayer-perceptron variational autoencoder (the classic Kingma & Welling model)",
        "ConvVAE": "convolutional variational autoencoder",
        "HierarchicalVAE": "hierarchical variational autoencoder (top-down inference, as in the Ladder VAE and NVAE)",
    }.get(type(model).__name__, "variational autoencoder")
    if getattr(model, "pixel_context", 0):
        description += (", with an autoregressive decoder: each pixel also reads the pixels decoded before it, up "
                        f"to {model.pixel_context} rows above and columns to each side (as in PixelVAE)")  # fmt: skip
    if iw_samples > 1:
        objective = f"the importance-weighted bound with {iw_samples} samples (IWAE, Burda et al. 2016), a tighter ELBO"
    elif hasattr(model, "lower_shapes"):
        objective = ("the ELBO (reconstruction + the top code's closed-form KL to N(0, I) + each latent map's "
                     "closed-form KL to its learned prior)")  # fmt: skip
    elif getattr(model, "prior", "standard") == "vamp":
        objective = (f"the ELBO (reconstruction + KL to the VampPrior, a mixture of the posteriors of "
                     f"{model.pseudo_inputs.shape[0]} learned pseudo-inputs, estimated at the drawn z)")  # fmt: skip
    else:
        objective = "the ELBO (reconstruction + closed-form KL to the N(0, I) prior)"
    maps = getattr(model, "lower_shapes", [])
    latent_note = f" (the top code; below it, latent maps of {' and '.join('x'.join(map(str, m)) for m in maps)})"
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE.read_text(encoding="utf-8"),
        model_name=name,
        model_description=description,
        repo_url=REPO_URL,
        repo_id=repo_id or "path/to/this/folder",
        dataset_name=display,
        latent_dim=model.latent_dim,
        image_shape=", ".join(map(str, model.image_shape)),
        recon_name="binary cross-entropy" if model.likelihood == "bernoulli" else "Gaussian",
        metrics=metrics,
        hyperparameters=hyperparameters,
        dataset_note=dataset_note or data.note,
        extra_limitations=extra_limitations or [],
        has_curves=has_curves,
        class_names=model.class_names if model.conditional else [],
        trained_on=trained_on,
        objective=objective,
        latent_note=latent_note if maps else "",
    )
