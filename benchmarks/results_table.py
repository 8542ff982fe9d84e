"""The likelihood table of docs/how-to/evaluate.md: the canonical PyTorch example beside vae-hub models, one test
set, one evaluation.

    python benchmarks/results_table.py --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist \
        --canonical runs/canonical-fashion-mnist space/models/conv-fashion-mnist space/models/mlp-fashion-mnist

The canonical example (pytorch/examples vae/main.py: the 784-400-20 MLP, 10 epochs, Adam 1e-3, batch 128, its own
DataLoader loop) is trained once into ``--canonical`` (its weights copied into a ``VariationalAutoencoder``, which
has the same layers) unless that folder exists. Every model is then measured by ``vae_hub.evaluation.evaluate``
on the full test split: a model folder whose ``metrics.json`` already holds that evaluation (written by
``vae-hub train`` at the end of training, same function, same test images, k >= --k) is read, not re-run, unless
``--reevaluate``. Prints a Markdown table with the data's own floor (the binary entropy of its grey levels).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import vae_hub
from vae_hub.cli.benchmark.reference import ReferenceVAE, train_reference
from vae_hub.data.image_data import fixed_binarization, to_unit
from vae_hub.data.named_sets import DATASETS, load_dataset
from vae_hub.evaluation.summary import evaluate

# the canonical example's layer names -> the seed model's
RENAME = {"fc1": "encoder_backbone.0", "fc21": "fc_mu", "fc22": "fc_logvar", "fc3": "decoder.0", "fc4": "decoder.2"}


def train_canonical(out: Path, dataset: str, data_dir: str, epochs: int) -> None:
    """Train the canonical example and save it as a vae-hub model folder (with the time it took)."""
    train = to_unit(load_dataset(dataset, data_dir, train=True, download=False).images)
    test = to_unit(load_dataset(dataset, data_dir, train=False, download=False).images)
    reference = ReferenceVAE(400, 20)
    start = time.perf_counter()
    history = train_reference(
        reference, TensorDataset(train, torch.zeros(len(train))), TensorDataset(test, torch.zeros(len(test))),
        epochs=epochs,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    model = vae_hub.VariationalAutoencoder(784, 400, 20)
    state = {f"{RENAME[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in reference.state_dict().items()}
    model.load_state_dict(state)
    model.save_pretrained(out)
    (out / "canonical.json").write_text(json.dumps({"train_seconds": seconds, "history": history}, indent=2))
    loss = history[-1]["test_loss"]
    print(f"trained the canonical example: {epochs} epochs in {seconds:.0f} s, its own test loss {loss:.2f}")


def describe(folder: Path, metrics: dict) -> tuple[str, str]:
    """(what the model is, how long it trained) from its metrics.json config, or the canonical example's record."""
    if (folder / "canonical.json").is_file():
        seconds = json.loads((folder / "canonical.json").read_text())["train_seconds"]
        return "canonical PyTorch example (MLP 784-400-20, 10 epochs)", f"{seconds / 60:.1f} min"
    c = metrics.get("config", {})
    if c.get("model") == "mlp":
        vamp = ", VampPrior" if c.get("prior") == "vamp" else ""
        what = f"MLP 784-{c.get('hidden_dim')}-{c.get('latent_dim')}{vamp}"
    elif c.get("model") == "hvae":
        what = f"hierarchical VAE, top latent {c.get('latent_dim')}, latent maps of {c.get('latent_channels')} ch."
        if c.get("pixel_context"):
            what += f", autoregressive decoder (reach {c['pixel_context']})"
    elif c.get("model") == "vqvae":
        what = f"VQ-VAE, {c.get('num_codes')} codes; {c.get('epochs')} + {c.get('prior_epochs')} prior epochs"
        seconds = metrics.get("train_seconds")
        return what, f"{seconds / 60:.1f} min" if seconds else ""
    else:
        blocks = f", {c['res_blocks']} residual block(s) per resolution" if c.get("res_blocks") else ""
        what = f"ConvVAE, latent {c.get('latent_dim')}{blocks}"
    objective = "ELBO" if c.get("iw_samples", 1) == 1 else f"IWAE K={c['iw_samples']}"
    extra = [f"{c.get('epochs')} epochs", objective]
    if c.get("conditional"):
        extra.append("conditional: NLL is -log p(x|y)")
    seconds = metrics.get("train_seconds")
    return f"{what} ({', '.join(extra)})", f"{seconds / 60:.1f} min" if seconds else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", type=Path, help="vae-hub model folders")
    p.add_argument("--dataset", choices=list(DATASETS), required=True)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--binarize", action="store_true", help="the fixed binarization of the test set (--binarize runs)")
    p.add_argument("--canonical", type=Path, help="the canonical example's folder (trained here if missing)")
    p.add_argument("--canonical-epochs", type=int, default=10)
    p.add_argument("--k", type=int, default=1000, help="importance samples for the NLL")
    p.add_argument("--reevaluate", action="store_true", help="evaluate every model, even one with metrics.json")
    args = p.parse_args(argv)
    test_images = to_unit(load_dataset(args.dataset, args.data_dir, train=False, download=False).images)
    if args.binarize:
        test_images = fixed_binarization(test_images)
    test_labels = load_dataset(args.dataset, args.data_dir, train=False, download=False).labels
    folders = list(args.models)
    if args.canonical:
        if not (args.canonical / "model.safetensors").is_file():
            train_canonical(args.canonical, args.dataset, args.data_dir, args.canonical_epochs)
        folders.insert(0, args.canonical)
    rows, floor = [], None
    for folder in folders:
        saved = json.loads((folder / "metrics.json").read_text()) if (folder / "metrics.json").is_file() else {}
        test = saved.get("test", {})
        reuse = (
            not args.reevaluate and saved.get("dataset") == args.dataset
            and (test.get("nll_k", 0) >= args.k or "nll_bound" in test)  # a VQ-VAE's bound has no k
            and test.get("num_images") == len(test_images) and saved.get("config", {}).get("binarize") == args.binarize
        )  # fmt: skip
        if not reuse:
            model = vae_hub.from_pretrained(folder).eval()
            start = time.perf_counter()
            test = evaluate(model, test_images, labels=test_labels, k=args.k, progress=True, desc=folder.name)
            print(f"evaluated {folder} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        floor = test.get("bernoulli_floor", floor)
        what, trained = describe(folder, saved)
        rows.append((folder.name, what, test, trained, "metrics.json" if reuse else "evaluated now"))
    print(f"| model | what | test NLL, k = {args.k} | NLL bits/dim | test -ELBO | active units | training | figures |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    dims_ln2 = test_images[0].numel() * 0.6931471805599453  # nats per image -> bits per dimension
    for name, what, t, trained, source in rows:
        if "nll_bound" in t:  # a VQ-VAE: an upper bound (reconstruction + code length), no ELBO or active units
            print(f"| {name} | {what} | ≤ {t['nll_bound']:.2f} (bound) | ≤ {t['nll_bound_bits_per_dim']:.4f} | | "
                  f"codebook perplexity {t['perplexity']:.1f} | {trained} | {source} |")  # fmt: skip
            continue
        bits = t.get("nll_bits_per_dim", t["nll"] / dims_ln2)  # older metrics.json files do not hold it
        print(
            f"| {name} | {what} | {t['nll']:.2f} | {bits:.4f} | {t['loss']:.2f} | "
            f"{t['active_units']} of {t['latent_dim']} | {trained} | {source} |"
        )
    if floor is not None:
        bits = floor / dims_ln2
        print(f"| floor | the test images' own binary entropy | {floor:.2f} | {bits:.4f} | | | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
