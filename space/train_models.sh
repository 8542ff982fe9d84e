#!/usr/bin/env bash
# Train the models bundled with the Space (space/models/*), exactly as committed.
# Needs Debian's dataset-fashion-mnist and the MNIST 5k subset (see ../shared/data/README.md), about 75 min on 2 cores
# (the ConvVAE on Fashion-MNIST: 33 min of training, 80 epochs, and 20 min for its k = 1000 evaluation).
# Usage: bash space/train_models.sh [FASHION_MNIST_DIR] [MNIST_5K_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
FMNIST=${1:-/usr/share/datasets/fashion-mnist}
MNIST5K=${2:-../shared/data/mnist-5k}
RUNS=runs/space-models

train() {  # name, then train.py flags
  local name=$1; shift
  vae-hub train --output-dir "$RUNS/$name" --no-download --log-every 100 "$@"
  mkdir -p "space/models/$name"
  # the save_pretrained layout and the generated card; the training checkpoints stay behind
  cp "$RUNS/$name"/{config.json,model.safetensors,README.md,metrics.json,samples.png,reconstructions.png,training_curves.png} \
    "space/models/$name/"
}

train conv-fashion-mnist --model conv --latent-dim 16 --hidden-dim 256 --dataset fashion-mnist --data-dir "$FMNIST" \
  --epochs 80 --lr-schedule cosine --eval-k 1000 --model-name "vae-hub ConvVAE, Fashion-MNIST"
train mlp-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 20 --dataset fashion-mnist --data-dir "$FMNIST" \
  --epochs 10 --eval-k 1000 --model-name "The seed's MLP VAE (784-400-20), Fashion-MNIST"
train cmlp-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 20 --conditional --dataset fashion-mnist \
  --data-dir "$FMNIST" --epochs 10 --eval-k 1000 --model-name "Conditional MLP VAE (784-400-20), Fashion-MNIST"
train conv-mnist-5k --model conv --latent-dim 16 --hidden-dim 256 --dataset mnist --data-dir "$MNIST5K" \
  --epochs 30 --eval-k 1000 --model-name "vae-hub ConvVAE, MNIST (5,000-image subset)" \
  --data-note "a 5,000-image subset of MNIST: 4,000 images to train, 1,000 held out for the test metrics." \
  --limitation "Trained on a 5,000-image subset of MNIST (4,000 train / 1,000 test, 400 / 100 per digit, all drawn from the official MNIST training set), not on the full 60,000 images: the only MNIST available offline. Its test figures are on those 1,000 held-out images."
train mlp-2d-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 2 --dataset fashion-mnist --data-dir "$FMNIST" \
  --epochs 20 --eval-k 1000 --model-name "MLP VAE with a 2-D latent space, Fashion-MNIST" \
  --limitation "A 2-D latent space is chosen so the whole latent space can be drawn as one grid; it reconstructs much worse than the 20-D model."
