#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU, in the repository root, with the bundle from
# scripts/build-cuda.sh in ./cuda-bundle (or $BUNDLE). Finishes in ~5-8 minutes:
#   1. the quickstart (shortened) on CUDA and on CPU with the same seed: loss curves compared;
#   2. `gptlab bench --device cuda` on the medium and gpt2 (124M) presets;
#   3. a table: CPU-vs-CUDA loss agreement, tokens/s, MFU against the GPU's measured matmul
#      peak, memory.
# Tolerance: the two devices sum in different orders (cuBLAS vs gemm), so curves agree to
# float32 rounding that grows with training; we require |loss_cuda - loss_cpu| <= 0.02 + 2% at
# every logged step of the first 100 steps.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(cd "${BUNDLE:-cuda-bundle}" && pwd)
NV=${TORCH_NV_LIB:-$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -1)}
export LD_LIBRARY_PATH="$NV${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
. "$B/paths.env"
mkdir -p "$CUDA_INCLUDE_DIR" "$DFDX_OUT_DIR"
cp "$B"/hdr/cuda_fp16.h* "$CUDA_INCLUDE_DIR/"; cp "$B"/hdr/*.cuh "$DFDX_OUT_DIR/"
G="$B/gptlab"
OUT=${OUT:-/tmp/gptlab-gpu-check}
rm -rf "$OUT"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv

SHORT=(--set stages.base.steps=100 --set stages.assistant.steps=40 --set stages.rm.steps=20 --set stages.rlhf.steps=4)
(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/mem.txt") & MEMPID=$!
t0=$(date +%s)
"$G" run experiments/quickstart.toml "${SHORT[@]}" --set device=cuda --results "$OUT/cuda" | tail -1 > "$OUT/cuda.dir"
t1=$(date +%s)
"$G" run experiments/quickstart.toml "${SHORT[@]}" --set device=cpu --results "$OUT/cpu" | tail -1 > "$OUT/cpu.dir"
"$G" bench --device cuda --presets medium,gpt2 --steps 10 --out "$OUT/bench.json" > /dev/null
kill $MEMPID 2>/dev/null || true

python3 - "$OUT" "$((t1 - t0))" <<'PY'
import csv, json, sys
out, cuda_wall = sys.argv[1], sys.argv[2]
def losses(which):
    run = open(f"{out}/{which}.dir").read().strip()
    return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(open(f"{run}/base/metrics.csv")) if r.get("loss")}
cpu, cuda = losses("cpu"), losses("cuda")
worst = max(abs(cuda[s] - cpu[s]) - 0.02 * abs(cpu[s]) for s in cpu if s in cuda)
ok = worst <= 0.02
bench = json.load(open(f"{out}/bench.json"))
mem = max((int(x) for x in open(f"{out}/mem.txt").read().split() if x.isdigit()), default=0)
print()
print(f"quickstart CPU vs CUDA: max |Δloss| - 2% = {worst:.4f} over {len(cpu)} steps -> {'OK' if ok else 'MISMATCH'} (cuda wall {cuda_wall}s)")
print(f"GPU matmul peak (fp32, measured): {bench['matmul_peak_gflops']:.0f} GFLOP/s; peak GPU memory used {mem} MiB")
print(f"{'preset':<8} {'ms/step':>9} {'tokens/s':>10} {'GFLOP/s':>9} {'MFU':>6} {'gen tok/s (cache)':>18}")
for t, g in zip(bench["train"], bench["generate"]):
    print(f"{t['preset']:<8} {t['ms_per_step']:>9.1f} {t['tokens_per_sec']:>10.0f} {t['gflops']:>9.0f} {100*t['mfu']:>5.1f}% {g['cached_tokens_per_sec']:>18.0f}")
sys.exit(0 if ok else 1)
PY
