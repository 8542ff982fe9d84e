#!/usr/bin/env bash
# The likelihood table of docs/how-to/evaluate.md: the canonical example and the bundled Fashion-MNIST models on one table,
# and the seed's MLP on dynamically binarized MNIST-5k (to set beside the literature's binarized MNIST).
# Needs Debian's dataset-fashion-mnist and the MNIST 5k subset (../shared/data/README.md); the bundled models come
# from space/train_models.sh. About 20-30 min on 2 cores (the canonical example's training and k = 1000 evaluation,
# the MLP with N(0, I) and with the VampPrior, then the seed's MLP on MNIST-5k trained with the ELBO and with IWAE,
# K = 5, each evaluated on 1,000 test images).
# Usage: bash benchmarks/likelihood_runs.sh [FASHION_MNIST_DIR] [MNIST_5K_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
FMNIST=${1:-/usr/share/datasets/fashion-mnist}
MNIST5K=${2:-../shared/data/mnist-5k}
RUNS=runs/likelihoods

echo "## Fashion-MNIST (grey levels, Bernoulli likelihood; 10,000 test images)"
python benchmarks/results_table.py --dataset fashion-mnist --data-dir "$FMNIST" --canonical "$RUNS/canonical-fashion-mnist" \
  space/models/conv-fashion-mnist space/models/mlp-fashion-mnist space/models/cmlp-fashion-mnist \
  space/models/hvae-fashion-mnist space/models/vqvae-fashion-mnist space/models/mlp-2d-fashion-mnist \
  space/models/vamp-2d-fashion-mnist

# The same MLP with each prior, trained by the same autograd step (the fused step covers N(0, I) only)
fmnist() {  # name, then train flags
  local name=$1; shift
  [ -f "$RUNS/prior/$name/metrics.json" ] || vae-hub train --dataset fashion-mnist --data-dir "$FMNIST" --no-download \
    --no-progress --eval-k 1000 --log-every 100 --no-fused-step --model mlp --hidden-dim 400 --latent-dim 20 \
    --epochs 10 --output-dir "$RUNS/prior/$name" "$@"
}
fmnist mlp-standard
fmnist mlp-vamp --prior vamp --pseudo-inputs 500
echo "## Fashion-MNIST: the 784-400-20 MLP with N(0, I) and with the VampPrior (10 epochs each)"
python benchmarks/results_table.py --dataset fashion-mnist --data-dir "$FMNIST" "$RUNS/prior/mlp-standard" \
  "$RUNS/prior/mlp-vamp"

common=(--dataset mnist --data-dir "$MNIST5K" --binarize --no-download --no-progress --eval-k 1000 --log-every 100)
mnist() {  # name, then train flags
  local name=$1; shift
  [ -f "$RUNS/mnist5k/$name/metrics.json" ] || vae-hub train "${common[@]}" --output-dir "$RUNS/mnist5k/$name" "$@"
}
mnist mlp --model mlp --hidden-dim 400 --latent-dim 20 --epochs 50
mnist mlp-iw5 --model mlp --hidden-dim 400 --latent-dim 20 --epochs 50 --iw-samples 5
echo "## MNIST-5k, dynamically binarized (4,000 training images; 1,000 test images, binarized once)"
python benchmarks/results_table.py --dataset mnist --data-dir "$MNIST5K" --binarize \
  "$RUNS/mnist5k/mlp" "$RUNS/mnist5k/mlp-iw5"
