#!/usr/bin/env bash
# Builds Stride with candle's CUDA backend on a machine without a GPU (nor a CUDA install),
# with the CUDA 13.4 compiler, headers and libraries from PyPI: proof that `--features cuda`
# compiles and links. Run it on a GPU machine to train with `--device cuda`.
#
#   scripts/cuda_build_check.sh            # target/cuda, compute capability 8.0
#   CARGO_TARGET_DIR=/tmp/t CUDA_COMPUTE_CAP=90 scripts/cuda_build_check.sh
#
# Why each piece:
# - CUDA 13.4 (`nvidia-cuda-nvcc==13.4.*`, the `nvidia/cu13` tree): PyPI's 12.x compiler
#   package (`nvidia-cuda-nvcc-cu12`) ships ptxas only, no `nvcc`; cudarc 0.19 knows CUDA
#   up to 13.4, so 13.5 would fail its version check. CCCL (`nv/target`, used by cuda_fp16.h)
#   is a package of its own.
# - candle links the CUDA libraries (cudarc's `dynamic-linking`): the linker needs the
#   unversioned `libcudart.so`, `libcublas.so`, ... (the wheels ship `.so.13` only) and
#   `libcuda.so`, the driver's library, which no wheel ships. A stub with the driver's
#   symbols (as the CUDA toolkit's `lib/stubs/libcuda.so`) satisfies the link; at run time
#   the driver's own `libcuda.so.1` is loaded.
#   Every stub function returns CUDA_ERROR_NO_DEVICE (100), so the stub is also a driver
#   that finds no GPU: the check below runs the binary on it.
# - No GPU to ask: the compute capability comes from CUDA_COMPUTE_CAP (candle's kernels are
#   PTX, which a newer GPU compiles at load).
#
# The resulting binary needs the CUDA 13 runtime libraries on the loader path to start
# (`LD_LIBRARY_PATH=<venv>/lib/python3*/site-packages/nvidia/cu13/lib`), and a GPU with its
# driver to train; without a driver, `--device cuda` is refused with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
target=${CARGO_TARGET_DIR:-target/cuda}
mkdir -p "$target"
target=$(cd "$target" && pwd)
venv="$target/pyenv"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q nvidia-cuda-nvcc==13.4.92 nvidia-cuda-crt==13.4.92 nvidia-nvvm==13.4.92 \
    nvidia-cuda-runtime==13.4.92 nvidia-cuda-nvrtc==13.4.92 nvidia-cuda-cccl==13.3.5.0.6 \
    nvidia-cublas==13.10.0.20 nvidia-curand==10.4.5.25
root=$("$venv/bin/python" -c "import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], 'cu13'))")

# The link directory: unversioned names for the wheels' libraries, and the driver stub.
link="$target/cuda-link"
mkdir -p "$link"
for lib in cudart cublas cublasLt nvrtc curand; do
    ln -sf "$(ls "$root"/lib/lib$lib.so.* | head -1)" "$link/lib$lib.so"
done
cudarc=$(grep -A1 '^name = "cudarc"' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
sys=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$cudarc"/src/driver/sys/mod.rs 2>/dev/null | head -1 || true)
if [ -z "$sys" ]; then
    cargo fetch --quiet
    sys=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$cudarc"/src/driver/sys/mod.rs | head -1)
fi
grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$sys" | grep -oE 'cu[A-Za-z0-9_]+' | sort -u \
    | sed 's/.*/int &(void) { return 100; }/' > "$link/cuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/cuda_stub.c"
ln -sf libcuda.so "$link/libcuda.so.1"

export PATH="$root/bin:$PATH" CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root" NVCC="$root/bin/nvcc"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}
export CPATH="$root/include${CPATH:+:$CPATH}" LIBRARY_PATH="$link:$root/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
nvcc --version | tail -2
CARGO_TARGET_DIR="$target" cargo build --release --features cuda --bin stride
bin="$target/release/stride"
echo "linked against: $(LD_LIBRARY_PATH="$root/lib" ldd "$bin" | grep -oE 'lib(cuda|cudart|cublas|cublasLt|curand|nvrtc)\.so\.[0-9]+' | sort -u | tr '\n' ' ')"
# On the stub driver (no GPU), the device is refused with a message naming the cause, not a panic.
if ! [ -e /dev/nvidia0 ]; then
    out=$(env -u RUST_BACKTRACE LD_LIBRARY_PATH="$link:$root/lib" "$bin" train --device cuda --epochs 1 2>&1 || true)
    echo "stride train --device cuda, no GPU: $(echo "$out" | grep -m1 -E "^Error|no usable" || echo "$out" | head -1)"
    if echo "$out" | grep -q panicked || ! echo "$out" | grep -q "no usable CUDA GPU"; then
        echo "FAIL: the cuda build does not refuse a machine without a GPU cleanly" >&2
        exit 1
    fi
fi
echo "ok: built $bin with --features cuda in $(( $(date +%s) - started )) s"
