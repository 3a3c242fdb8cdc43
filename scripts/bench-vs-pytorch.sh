#!/usr/bin/env bash
# gptlab against the PyTorch peer (../shared/bench/torch_gpt.py, eager, 2 threads) on the same
# machine, one right after the other, on the issue's two configurations:
#   small  = 4L/4H/128, ctx 64,  batch 12 (nanoGPT's CPU config)
#   medium = 6L/6H/384, ctx 256, batch 8
# Each pair runs ROUNDS times (default 2), alternating peer and gptlab, so drifting machine speed
# hits both. Prints a table of tokens/s and the ratio (from the medians, and from each
# side's fastest round); writes everything to $OUT (default results/bench).
# Needs: python3 with torch (pip install torch numpy), and a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${PEER:-../shared/bench/torch_gpt.py}
PY=${PY:-python3}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-results/bench}
G=${GPTLAB:-target/release/gptlab}
mkdir -p "$OUT"
[ -x "$G" ] || cargo build --release
"$PY" -c "import torch" 2>/dev/null || { echo "python3 cannot import torch: pip install torch numpy" >&2; exit 2; }

peer_small=(--n-layer 4 --n-head 4 --n-embd 128 --block-size 64 --batch-size 12 --iters 150)
peer_medium=(--n-layer 6 --n-head 6 --n-embd 384 --block-size 256 --batch-size 8 --iters 20)
common=(--eval-interval 0 --eval-iters 0 --final-eval-iters 1 --threads 2 --compile 0)

for r in $(seq 1 "$ROUNDS"); do
  for preset in small medium; do
    args="peer_${preset}[@]"
    echo "== round $r: $preset (PyTorch, then gptlab); load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    "$PY" "$PEER" "${!args}" "${common[@]}" --out "$OUT/torch-$preset-r$r.json" > "$OUT/torch-$preset-r$r.log" 2>&1
    steps=30; [ "$preset" = medium ] && steps=10
    "$G" bench --presets "$preset" --steps "$steps" --no-generate --out "$OUT/gptlab-$preset-r$r.json" > /dev/null
  done
done

"$PY" - "$OUT" "$ROUNDS" <<'PYEOF'
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
rows, summary = [], {}
# The machine's fp32 peak: the best gemm any gptlab run measured.
peak = max(json.load(open(f"{out}/gptlab-{p}-r{r}.json"))["matmul_peak_gflops"]
           for p in ("small", "medium") for r in range(1, rounds + 1))
for preset in ("small", "medium"):
    peer = [json.load(open(f"{out}/torch-{preset}-r{r}.json")) for r in range(1, rounds + 1)]
    ours = [json.load(open(f"{out}/gptlab-{preset}-r{r}.json")) for r in range(1, rounds + 1)]
    p_ms = statistics.median(p["ms_per_iter_median"] for p in peer)
    p_min = min(p["ms_per_iter_min"] for p in peer)
    g_ms = statistics.median(g["train"][0]["ms_per_step"] for g in ours)
    g_min = min(g["train"][0]["ms_per_step_min"] for g in ours)
    g = ours[0]["train"][0]
    tokens = g["batch"] * g["seq"]
    mfu = g["gflops"] * g["ms_per_step"] / g_ms / peak
    summary[preset] = dict(tokens_per_step=tokens, torch_ms=p_ms, gptlab_ms=g_ms, ratio=p_ms / g_ms,
                           torch_fastest_ms=p_min, gptlab_fastest_ms=g_min, ratio_fastest=p_min / g_min,
                           gptlab_mfu=mfu, matmul_peak_gflops=peak)
    rows.append(f"| {preset} | {tokens/p_ms*1e3:,.0f} | {tokens/g_ms*1e3:,.0f} | {p_ms/g_ms:.2f}x | "
                f"{p_min/g_min:.2f}x | {100*mfu:.0f}% of {peak:.0f} GFLOP/s |")
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print("| config | PyTorch tok/s | gptlab tok/s | ratio (medians) | ratio (fastest) | gptlab MFU |")
print("|---|---|---|---|---|---|")
print("\n".join(rows))
PYEOF
