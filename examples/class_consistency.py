"""Are a conditional model's samples of the class asked for? A small classifier, trained here on the data set's
training split, labels samples drawn for each class; the agreement is the figure.

    python examples/class_consistency.py space/models/cmlp-fashion-mnist \
        --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import vae_hub
from vae_hub.data.image_data import to_unit
from vae_hub.data.named_sets import DATASETS, load_dataset


def classifier(channels: int, num_classes: int) -> nn.Module:
    """Two convolutions and a linear layer: about 91% on Fashion-MNIST after two epochs."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.LazyLinear(128), nn.ReLU(), nn.Linear(128, num_classes),
    )  # fmt: skip


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    net = classifier(images.shape[1], num_classes)
    net(to_unit(images[:2]))  # sizes the lazy layer
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(images)).split(128):
            loss = nn.functional.cross_entropy(net(to_unit(images[idx])), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    predicted = torch.cat([net(to_unit(x)).argmax(1) for x in images.split(1000)])
    return float((predicted == labels).float().mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a conditional vae-hub model (folder or Hub repo id)")
    p.add_argument("--dataset", choices=list(DATASETS), required=True)
    p.add_argument("--data-dir", default="data")
    p.add_argument("--per-class", type=int, default=500, help="samples drawn for each class")
    p.add_argument("--epochs", type=int, default=2, help="classifier training epochs")
    p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.5], help="prior scales to sample at")
    args = p.parse_args(argv)
    model = vae_hub.from_pretrained(args.model).eval()
    if not model.conditional:
        p.error(f"{args.model} is not a conditional model")
    train = load_dataset(args.dataset, args.data_dir, train=True, download=False)
    test = load_dataset(args.dataset, args.data_dir, train=False, download=False)
    start = time.perf_counter()
    net = train_classifier(train.images, train.labels, model.num_classes, args.epochs)
    print(f"classifier: {accuracy(net, test.images, test.labels):.1%} on the test split "
          f"({time.perf_counter() - start:.0f} s to train)")  # fmt: skip
    with torch.no_grad():  # the blur alone: the model's reconstructions of test images, given their labels
        recon = model.reconstruct(to_unit(test.images[:2000]), labels=test.labels[:2000])
        blurred = float((torch.cat([net(x).argmax(1) for x in recon.split(1000)]) == test.labels[:2000]).float().mean())
    print(f"classifier on the model's reconstructions of 2,000 test images: {blurred:.1%} (the cost of blur alone)")
    labels = torch.arange(model.num_classes).repeat_interleave(args.per_class)
    for temperature in args.temperatures:
        with torch.no_grad():
            generator = torch.Generator().manual_seed(0)
            samples = model.sample(len(labels), temperature, generator=generator, labels=labels)
            predicted = torch.cat([net(x).argmax(1) for x in samples.split(1000)])
        agree = predicted == labels
        per_class = ", ".join(f"{n} {agree[labels == c].float().mean():.0%}" for c, n in enumerate(model.class_names))
        print(f"temperature {temperature:g}: {agree.float().mean():.1%} of {len(labels):,} samples classified as the "
              f"class asked for ({per_class})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
