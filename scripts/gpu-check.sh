#!/usr/bin/env bash
# The GPU check, in one go: on a machine with an NVIDIA GPU, in the repository root, with the
# bundle from scripts/build-cuda.sh in ./cuda-bundle (or $BUNDLE). About 5-8 minutes:
#   1. the quickstart (shortened) on CUDA and on the CPU with the same seed: every stage's
#      logged losses, final metrics and the assistant's greedy answers side by side;
#   2. `gptlab bench --device cuda` on the medium and gpt2 presets: training tokens/s, MFU and
#      host reads per step, generation tokens/s at batch 1/8/32;
#   3. `gptlab serve --device cuda` answering a streamed chat request (curl);
#   4. one JSON file of everything: $OUT/gpu-check.json.
# It stops at the first failure with a line saying which check failed and why.
#
# Tolerances: the devices sum in different orders (cuBLAS vs gemm), so losses agree to float32
# rounding that grows with training: |loss_cuda - loss_cpu| <= 0.02 + 2% at every logged step
# of the pretrain and SFT stages. Greedy answers of the assistant must be identical. Reward and
# RLHF metrics are reported side by side, not compared (sampling amplifies rounding).
#
# Dry run, on any machine: GPU_CHECK_DEVICE=cpu runs every step with the CPU standing in for
# CUDA, at reduced sizes (nano bench, a few steps), with $GPTLAB as the binary (default
# target/release/gptlab); tests/gpu_check.rs runs it so the script's own logic is tested.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${GPU_CHECK_DEVICE:-cuda}
OUT=${OUT:-/tmp/gptlab-gpu-check}
rm -rf "$OUT"; mkdir -p "$OUT"
STEP="setup"
fail() { echo "GPU CHECK FAILED at '$STEP': $*" >&2; exit 1; }
trap 'fail "a command exited with an error (its output is above)"' ERR

if [ "$DEVICE" = cuda ]; then
  B=$(cd "${BUNDLE:-cuda-bundle}" && pwd) || fail "no bundle: run scripts/build-cuda.sh first"
  NV=${TORCH_NV_LIB:-$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -1)}
  export LD_LIBRARY_PATH="$NV${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  . "$B/paths.env"
  mkdir -p "$CUDA_INCLUDE_DIR" "$DFDX_OUT_DIR"
  cp "$B"/hdr/cuda_fp16.h* "$CUDA_INCLUDE_DIR/"; cp "$B"/hdr/*.cuh "$DFDX_OUT_DIR/"
  G=${GPTLAB:-$B/gptlab}
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" \
    || fail "nvidia-smi cannot see a GPU"
  SHORT=(--set stages.base.steps=100 --set stages.assistant.steps=40 --set stages.rm.steps=20 --set stages.rlhf.steps=4)
  PRESETS=medium,gpt2; BENCH_STEPS=10
else
  G=${GPTLAB:-target/release/gptlab}
  echo "dry run: the CPU stands in for CUDA" > "$OUT/gpu.txt"
  SHORT=(--set stages.base.steps=6 --set stages.base.batch_size=4 --set stages.base.eval_every=3 --set stages.base.warmup_steps=2
         --set stages.assistant.steps=4 --set stages.assistant.batch_size=4 --set stages.assistant.eval_every=2
         --set stages.assistant.warmup_steps=1
         --set stages.rate.samples=2 --set stages.rm.steps=2 --set stages.rm.batch_size=4
         --set stages.rlhf.steps=1 --set stages.rlhf.rollout_batch=2 --set stages.rlhf.eval_every=1
         --set report.eval.limit=8)
  PRESETS=nano; BENCH_STEPS=2
fi
[ -x "$G" ] || fail "no gptlab binary at $G"
QUESTIONS=("中国的首都是哪里?" "你叫什么名字?" "6加1等于多少?" "狗用英文怎么说?")

STEP="quickstart on $DEVICE"
t0=$(date +%s)
"$G" run experiments/quickstart.toml "${SHORT[@]}" --set device="$DEVICE" --results "$OUT/dev" > "$OUT/dev.log" 2>&1 \
  || { tail -5 "$OUT/dev.log" >&2; fail "the run failed (log: $OUT/dev.log)"; }
tail -1 "$OUT/dev.log" > "$OUT/dev.dir"
t1=$(date +%s)
STEP="quickstart on cpu"
"$G" run experiments/quickstart.toml "${SHORT[@]}" --set device=cpu --results "$OUT/cpu" > "$OUT/cpu.log" 2>&1 \
  || { tail -5 "$OUT/cpu.log" >&2; fail "the run failed (log: $OUT/cpu.log)"; }
tail -1 "$OUT/cpu.log" > "$OUT/cpu.dir"

STEP="greedy answers"
for which in dev cpu; do
  d=$DEVICE; [ "$which" = cpu ] && d=cpu
  for q in "${QUESTIONS[@]}"; do
    "$G" generate "$(cat "$OUT/$which.dir")/assistant" --prompt "$q" --greedy --max-new-tokens 24 --device "$d" \
      | tr '\n' ' ' ; echo
  done > "$OUT/$which.answers"
done

STEP="bench --device $DEVICE"
"$G" bench --device "$DEVICE" --presets "$PRESETS" --steps "$BENCH_STEPS" --out "$OUT/bench.json" > /dev/null

STEP="serve --device $DEVICE"
"$G" serve "$(cat "$OUT/dev.dir")" --device "$DEVICE" --port 0 > "$OUT/serve.out" 2> "$OUT/serve.err" &
SERVER=$!
for _ in $(seq 100); do [ -s "$OUT/serve.out" ] && break; sleep 0.2; done
URL=$(head -1 "$OUT/serve.out")
[ -n "$URL" ] || { kill "$SERVER" 2>/dev/null; cat "$OUT/serve.err" >&2; fail "the server printed no address"; }
curl -sS -N --max-time 60 "${URL}v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "assistant", "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "中国的首都是哪里?"}]}' \
  > "$OUT/stream.txt" || { kill "$SERVER" 2>/dev/null; fail "curl got no answer"; }
kill "$SERVER" 2>/dev/null || true
wait "$SERVER" 2>/dev/null || true
grep -q '"content"' "$OUT/stream.txt" && grep -q 'data: \[DONE\]' "$OUT/stream.txt" \
  || fail "the stream has no content chunks or no [DONE]: $(head -c 300 "$OUT/stream.txt")"

STEP="comparison"
python3 - "$OUT" "$DEVICE" "$((t1 - t0))" <<'PY'
import csv, json, os, sys
out, device, wall = sys.argv[1], sys.argv[2], int(sys.argv[3])
def run(which):
    return open(f"{out}/{which}.dir").read().strip()
def losses(which, stage):
    path = f"{run(which)}/{stage}/metrics.csv"
    return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(open(path)) if r.get("loss")}
def fail(msg):
    print(f"GPU CHECK FAILED at 'comparison': {msg}", file=sys.stderr)
    sys.exit(1)
result = {"device": device, "gpu": open(f"{out}/gpu.txt").read().strip(), "quickstart_wall_s": wall,
          "stages": {}, "answers": [], "bench": json.load(open(f"{out}/bench.json"))}
for stage in ["base", "assistant"]:
    dev, cpu = losses("dev", stage), losses("cpu", stage)
    steps = sorted(set(dev) & set(cpu))
    if not steps:
        fail(f"{stage}: no logged losses to compare")
    worst = max(abs(dev[s] - cpu[s]) - 0.02 * abs(cpu[s]) for s in steps)
    result["stages"][stage] = {"steps": len(steps), "max_excess": worst,
                               "final": {"dev": dev[steps[-1]], "cpu": cpu[steps[-1]]}}
    if worst > 0.02:
        fail(f"{stage}: losses differ by {worst:.4f} beyond 2% (tolerance 0.02)")
summaries = {w: json.load(open(f"{run(w)}/summary.json")) for w in ["dev", "cpu"]}
result["final_metrics"] = {w: s.get("stages", s) for w, s in summaries.items()}
dev_answers = open(f"{out}/dev.answers").read().splitlines()
cpu_answers = open(f"{out}/cpu.answers").read().splitlines()
for a, b in zip(dev_answers, cpu_answers):
    result["answers"].append({"dev": a, "cpu": b, "identical": a == b})
result["serve_stream_bytes"] = os.path.getsize(f"{out}/stream.txt")
json.dump(result, open(f"{out}/gpu-check.json", "w"), ensure_ascii=False, indent=1)
if len(dev_answers) != len(cpu_answers) or dev_answers != cpu_answers:
    fail(f"greedy answers differ between {device} and cpu (see {out}/gpu-check.json)")
excess = ", ".join("%s %.4f" % (k, v["max_excess"]) for k, v in result["stages"].items())
print(f"quickstart {device} vs cpu: losses within tolerance ({excess}); "
      f"{len(dev_answers)} greedy answers identical; {device} wall {wall}s")
b = result["bench"]
print(f"matmul peak {b['matmul_peak_gflops']:.0f} GFLOP/s")
for t in b["train"]:
    print(f"train {t['preset']:<7} {t['tokens_per_sec']:>9.0f} tok/s  MFU {100 * t['mfu']:5.1f}%  "
          f"{t['reads_per_step']:.1f} reads/step")
for g in b["generate"]:
    shown = "  ".join(f"b{x['batch']}: {x['tokens_per_sec']:.0f} tok/s "
                      f"({x['reads_per_step']:.2f} reads, {x['uploads_per_step']:.2f} uploads/step)"
                      for x in g["batched"])
    print(f"generate {g['preset']:<7} {shown}")
print(f"serve: streamed answer OK; results in {out}/gpu-check.json")
PY
