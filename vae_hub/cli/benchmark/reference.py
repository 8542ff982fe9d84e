"""The canonical way to train the classic MLP VAE, as the PyTorch examples do it: the yardstick for vae-hub's speed.

torchvision ``DataLoader`` + ``ToTensor`` (one PIL image at a time), Adam 1e-3, summed BCE + KL, ``loss.item()``
after every batch, and a test pass after every epoch. Written out here on purpose, not imported from vae_hub.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


class ReferenceVAE(nn.Module):
    """pytorch/examples vae/main.py, with the hidden and latent sizes as arguments."""

    def __init__(self, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


class ReferenceConvVAE(nn.Module):
    """The same loop's convolutional VAE, layer for layer vae-hub's plain ``ConvVAE((1, 28, 28), 16, 32, 256)``."""

    def __init__(self, latent: int = 16, channels: int = 32, hidden: int = 256) -> None:
        super().__init__()
        c1, c2 = channels, 2 * channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(),
        )  # fmt: skip
        self.fc_mu, self.fc_logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, c2 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z).flatten(1), mu, logvar


def loss_function(recon_x: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_reference(
    model: nn.Module,
    train_set: Dataset,
    test_set: Dataset,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    loss_fn: Any = loss_function,
) -> list[dict[str, float]]:
    """The canonical loop; per epoch: train seconds, test seconds, train loss and test loss (nats per image)."""
    torch.manual_seed(seed)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=batch_size, shuffle=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        train_loss = 0.0
        for data, _ in train_loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_fn(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for data, _ in test_loader:
                recon_batch, mu, logvar = model(data)
                test_loss += loss_fn(recon_batch, data, mu, logvar).item()
        history.append(
            {
                "epoch": epoch,
                "train_seconds": train_seconds,
                "test_seconds": time.perf_counter() - start,
                "train_loss": train_loss / len(train_loader.dataset),
                "test_loss": test_loss / len(test_loader.dataset),
            }
        )
    return history


def main() -> None:
    """``python reference.py ROOT --model mlp --epochs 10 --json OUT``: the whole canonical process, as the benchmark
    times it (imports, data set, training, a test pass per epoch); the history goes to OUT."""
    from torchvision import datasets, transforms

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("root", help="a folder torchvision's FashionMNIST reads (FashionMNIST/raw/...)")
    p.add_argument("--model", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--json", required=True)
    args = p.parse_args()
    make = lambda train: datasets.FashionMNIST(args.root, train=train, transform=transforms.ToTensor())  # noqa: E731
    model = ReferenceVAE() if args.model == "mlp" else ReferenceConvVAE()
    history = train_reference(model, make(True), make(False), epochs=args.epochs)
    with open(args.json, "w") as f:
        json.dump(history, f)


if __name__ == "__main__":
    main()
