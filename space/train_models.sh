#!/usr/bin/env bash
# Train the models bundled with the Space (space/models/*), exactly as committed.
# Needs Debian's dataset-fashion-mnist and the MNIST 5k subset (see ../shared/data/README.md), about 4 hours on 2 cores
# (the residual ConvVAE on Fashion-MNIST: 38 min of training, 60 epochs in bf16, and about 25 min for its k = 1000
# evaluation with the decoder in bf16; the hierarchical VAE: ~75 min of training alone on an Intel Xeon with AMX (97.6
# as measured, beside a second training; README.md) and 22 min of evaluation; with the autoregressive decoder: 51
# min on an AMD EPYC (AVX-512 BF16) and ~50 min of evaluation; the
# VQ-VAE: about 17 min; then the lab's twins, named in space/models/lab.json: a few minutes each).
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

train conv-fashion-mnist --model conv --latent-dim 16 --hidden-dim 256 --res-blocks 1 --dataset fashion-mnist \
  --data-dir "$FMNIST" --epochs 60 --lr-schedule cosine --mixed-precision bf16 --eval-k 1000 \
  --model-name "vae-hub ConvVAE (residual), Fashion-MNIST"
train hvae-fashion-mnist --model hvae --latent-dim 16 --hidden-dim 256 --latent-channels 8 --dataset fashion-mnist \
  --data-dir "$FMNIST" --epochs 120 --lr-schedule cosine --mixed-precision bf16 --kl-warmup 10 --free-bits 0.05 \
  --ema 0.999 --eval-k 1000 --model-name "vae-hub hierarchical VAE, Fashion-MNIST"
# The same with an autoregressive decoder (each pixel reads the 24 decoded before it in a 7x7 window): fewer epochs
train hvae-pixel-fashion-mnist --model hvae --latent-dim 16 --hidden-dim 256 --latent-channels 8 --pixel-context 3 \
  --dataset fashion-mnist --data-dir "$FMNIST" --epochs 50 --lr-schedule cosine --mixed-precision bf16 --kl-warmup 10 \
  --free-bits 0.05 --ema 0.999 --eval-k 1000 \
  --model-name "vae-hub hierarchical VAE with an autoregressive decoder, Fashion-MNIST"
# The Remedies tab's VQ-VAE: the autoencoder and codebook, then the prior over its 7x7 code grids
train vqvae-fashion-mnist --model vqvae --num-codes 256 --code-dim 32 --dataset fashion-mnist \
  --data-dir "$FMNIST" --epochs 8 --prior-epochs 4 --lr-schedule cosine --mixed-precision bf16 \
  --model-name "vae-hub VQ-VAE, Fashion-MNIST"
train mlp-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 20 --dataset fashion-mnist --data-dir "$FMNIST" \
  --epochs 10 --eval-k 1000 --model-name "The classic MLP VAE (784-400-20), Fashion-MNIST"
train cmlp-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 20 --conditional --dataset fashion-mnist \
  --data-dir "$FMNIST" --epochs 10 --eval-k 1000 --model-name "Conditional MLP VAE (784-400-20), Fashion-MNIST"
train conv-mnist-5k --model conv --latent-dim 16 --hidden-dim 256 --dataset mnist --data-dir "$MNIST5K" \
  --epochs 30 --eval-k 1000 --model-name "vae-hub ConvVAE, MNIST (5,000-image subset)" \
  --data-note "a 5,000-image subset of MNIST: 4,000 images to train, 1,000 held out for the test metrics." \
  --limitation "Trained on a 5,000-image subset of MNIST (4,000 train / 1,000 test, 400 / 100 per digit, all drawn from the official MNIST training set), not on the full 60,000 images: the only MNIST available offline. Its test figures are on those 1,000 held-out images."
train mlp-2d-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 2 --dataset fashion-mnist --data-dir "$FMNIST" \
  --epochs 20 --eval-k 1000 --model-name "MLP VAE with a 2-D latent space, Fashion-MNIST" \
  --limitation "A 2-D latent space is chosen so the whole latent space can be drawn as one grid; it reconstructs much worse than the 20-D model."
# The VampPrior twin of mlp-2d-fashion-mnist: the same network and training with a learned mixture prior
train vamp-2d-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 2 --dataset fashion-mnist --data-dir "$FMNIST" \
  --epochs 20 --eval-k 1000 --prior vamp --pseudo-inputs 500 \
  --model-name "MLP VAE with a 2-D latent space and the VampPrior (500 pseudo-inputs), Fashion-MNIST" \
  --limitation "A 2-D latent space is chosen so the whole latent space can be drawn as one grid; it reconstructs much worse than the 20-D model."
# The lab (space/models/lab.json): the plain autoencoder twin of mlp-2d-fashion-mnist, and the beta twins
train ae-2d-fashion-mnist --model mlp --hidden-dim 400 --latent-dim 2 --dataset fashion-mnist --data-dir "$FMNIST" \
  --epochs 20 --autoencoder --model-name "Plain autoencoder with a 2-D latent space (the VAE's foil), Fashion-MNIST" \
  --limitation "A deterministic autoencoder, not a VAE: no KL term, so its codes need not fill N(0, I) and decoding a random point can give nonsense. The twin of mlp-2d-fashion-mnist (same architecture and training), bundled to show the difference."
for beta in 0.1 1 4 16; do
  train "beta-$beta-fashion-mnist" --model mlp --hidden-dim 256 --latent-dim 16 --dataset fashion-mnist \
    --data-dir "$FMNIST" --epochs 10 --beta "$beta" --eval-precision bf16 \
    --model-name "MLP VAE (784-256-16), beta = $beta, Fashion-MNIST" \
    --limitation "Trained with the KL term weighted by beta = $beta to show posterior collapse as beta grows; its test loss is the plain negative ELBO (beta = 1)."
done
