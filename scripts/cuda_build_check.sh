#!/usr/bin/env bash
# Builds Stride with candle's CUDA backend on a machine without a GPU, with the CUDA compiler
# and runtime headers from PyPI: proof that `--features cuda` compiles. Run it on a GPU
# machine to train with `--device cuda`. Uses its own target directory (the CUDA kernels take
# a while to build on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q nvidia-cuda-nvcc-cu12 nvidia-cuda-runtime-cu12 nvidia-cublas-cu12 nvidia-curand-cu12
root=$(python3 -c "import nvidia.cuda_nvcc, os; print(os.path.dirname(nvidia.cuda_nvcc.__file__))")
runtime=$(python3 -c "import nvidia.cuda_runtime, os; print(os.path.dirname(nvidia.cuda_runtime.__file__))")
export PATH="$root/bin:$PATH" CUDA_ROOT="$root" CUDA_PATH="$root"
export CPATH="$runtime/include:${CPATH:-}"
nvcc --version | tail -1
CARGO_TARGET_DIR=target/cuda cargo build --release --features cuda --bin stride
echo "ok: built target/cuda/release/stride with --features cuda"
