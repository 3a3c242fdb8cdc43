#!/usr/bin/env bash
# Builds gptlab with CUDA on a machine WITHOUT a GPU, for an NVIDIA H200 (sm_90) machine with
# driver 580 / CUDA 13 and no Rust toolchain, and packs a bundle to carry there.
#   bash scripts/build-cuda.sh            -> ./cuda-bundle/{gptlab, hdr/, paths.env}
# How (see also README "CUDA"): the CUDA 13.0 compiler and libraries come from PyPI wheels
# (pinned to what PyTorch's cu130 build uses; newer nvcc may emit PTX driver 580 refuses); a
# stub libcuda.so.1 serves for linking only; dfdx's build script asks nvidia-smi for the
# compute capability, so a stand-in answers 9.0. dfdx bakes the CUDA include folder and its own
# kernel-header folder into the binary for NVRTC: scripts/gpu-check.sh recreates them there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY_TK=${PY_TK:-/tmp/cuda13-pip}
TK=/tmp/cuda13                                   # fixed: baked into the binary
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/gptlab-cuda-target}
BUNDLE=${BUNDLE:-$PWD/cuda-bundle}
if [ ! -x "$PY_TK/nvidia/cu13/bin/nvcc" ]; then
  python3 -m pip install -q --no-deps --target "$PY_TK" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-cccl==13.0.85 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.1.0.3
fi
L=$PY_TK/nvidia/cu13/lib
for l in cublas cublasLt nvrtc; do ln -sf "lib$l.so.13" "$L/lib$l.so"; done
SYS=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.9.15/src/driver/sys.rs | head -1)
grep -oE 'pub fn cu[A-Za-z0-9_]+' "$SYS" | sed 's/pub fn //' | sort -u \
  | awk '{print "int "$1"(void){return 999;}"}' > "$PY_TK/cuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$L/libcuda.so" "$PY_TK/cuda_stub.c"
ln -sfn "$PY_TK/nvidia/cu13" "$TK"
mkdir -p "$PY_TK/fakebin"
printf '#!/bin/sh\nprintf "compute_cap\\n9.0\\n"\n' > "$PY_TK/fakebin/nvidia-smi"; chmod +x "$PY_TK/fakebin/nvidia-smi"
export PATH="$TK/bin:$PY_TK/fakebin:$PATH" CUDA_ROOT="$TK" CUDA_COMPUTE_CAP=90
cargo build --release --features cuda --bin gptlab
OUTF=$(grep -l 'CUDA_INCLUDE_DIR' "$CARGO_TARGET_DIR"/release/build/dfdx-*/output | head -1)
rm -rf "$BUNDLE"; mkdir -p "$BUNDLE/hdr"
cp "$CARGO_TARGET_DIR/release/gptlab" "$BUNDLE/"
cp "$TK/include/cuda_fp16.h" "$TK/include/cuda_fp16.hpp" "$(dirname "$OUTF")"/out/*.cuh "$BUNDLE/hdr/"
{ echo "CUDA_INCLUDE_DIR=$TK/include"; echo "DFDX_OUT_DIR=$(dirname "$OUTF")/out"; } > "$BUNDLE/paths.env"
du -sh "$BUNDLE"
