//! `gptlab bench`: training and generation speed per preset, against this machine's measured
//! fp32 matmul peak, written as JSON. Run the PyTorch peer (`shared/bench/torch_gpt.py`) right
//! before or after on the same machine: only ratios measured together mean anything.

pub mod lora;

use crate::model::generate::{generate, generate_all, Request};
use crate::model::presets::{build_model, model_config};
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel, LoraSpec};
use crate::spec::SampleSettings;
use crate::train::loss::{mask_weights, masked_cross_entropy};
use crate::train::optim::{AdamW, AdamWConfig};
use anyhow::Result;
use dfdx::prelude::*;
use dfdx::tensor::Gradients;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;

#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    pub preset: String,
    pub vocab: usize,
    pub batch: usize,
    pub seq: usize,
    pub params: usize,
    /// Median over the timed steps; the fastest one is a steadier figure on a shared machine.
    pub ms_per_step: f64,
    pub ms_per_step_min: f64,
    /// Median CPU time (all threads) of a step: less moved than wall time by other work on a
    /// shared machine, since time spent waiting for a core is not counted.
    pub cpu_ms_per_step: f64,
    pub tokens_per_sec: f64,
    pub gflops: f64,
    pub mfu: f64,
    /// Device-to-host reads per training step (`util/readback.rs`): each one a wait for a GPU.
    pub reads_per_step: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GenBench {
    pub preset: String,
    pub context: usize,
    pub cached_tokens_per_sec: f64,
    pub uncached_tokens_per_sec: f64,
    pub speedup: f64,
    pub identical_greedy_output: bool,
    /// Generated tokens per second with this many different prompts answered together.
    pub batched: Vec<BatchedGen>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BatchedGen {
    pub batch: usize,
    pub tokens_per_sec: f64,
    /// Device-to-host reads per decode step (one step adds a token to every row).
    pub reads_per_step: f64,
    /// Host-to-device uploads per decode step (`util/upload.rs`), counted the same way.
    pub uploads_per_step: f64,
}

/// The batch sizes generation is measured at.
pub const GEN_BATCHES: [usize; 3] = [1, 8, 32];

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub device: String,
    pub threads: usize,
    pub matmul_peak_gflops: f64,
    pub train: Vec<TrainBench>,
    pub generate: Vec<GenBench>,
    pub peak_rss_mb: f64,
}

/// The best of several large f32 matrix products, in GFLOP/s: the "peak" MFU is measured against.
/// On CPU through the same gemm the model's layers use, on other devices through dfdx.
pub fn matmul_peak<D: Backend>(dev: &D, n: usize, reps: usize) -> f64 {
    if (dev as &dyn std::any::Any).is::<Cpu>() {
        return cpu_gemm_peak(n, reps);
    }
    let a: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&(n, n));
    let b: Tensor<(usize, usize), f32, D> = dev.sample_normal_like(&(n, n));
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let c = a.clone().matmul(b.clone());
        // Reading one value waits for the device to finish (CUDA runs asynchronously).
        std::hint::black_box(crate::util::readback::to_vec(&c.slice((0..1, 0..1))));
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

fn cpu_gemm_peak(n: usize, reps: usize) -> f64 {
    use crate::model::kernels::matmul::{gemm_into, Mat};
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut c = vec![0.0; n * n];
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        gemm_into(&mut c, Mat::new(&a, n, n), Mat::new(&a, n, n), false);
        std::hint::black_box(&c);
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (n * n * n) as f64 / best / 1e9
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median time of full training steps (forward, backward, clip, AdamW) on random tokens;
/// with `lora`, of the adapters' training (the base frozen). `params` counts what trains.
#[allow(clippy::too_many_arguments)]
pub fn bench_train<D: Backend>(
    dev: &D,
    preset: &str,
    vocab: usize,
    batch: usize,
    seq: usize,
    steps: usize,
    peak: f64,
    lora: Option<&LoraSpec>,
    checkpoint: bool,
) -> Result<TrainBench> {
    let cfg = model_config(preset, vocab)?;
    let mut model = build_model(&cfg, dev, 0)?;
    if let Some(spec) = lora {
        model.add_adapters(spec, 1)?;
    }
    model.set_checkpointing(checkpoint);
    let params = crate::results::weights::model_tensors(model.as_mut())?
        .iter()
        .map(|t| t.2.len())
        .sum();
    let mut optim = AdamW::new(AdamWConfig {
        betas: [0.9, 0.95],
        eps: 1e-8,
        weight_decay: 0.1,
        grad_clip: 1.0,
    });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (mut times, mut cpu_times) = (Vec::new(), Vec::new());
    let reads_before = crate::util::readback::count();
    // Three untimed steps warm the buffer pool and the allocator; fewer when few are timed
    // (a gpt2 step on the CPU takes seconds).
    let warmup = (steps / 3).clamp(1, 3);
    for i in 0..steps + warmup {
        let x: Vec<usize> = (0..batch * seq).map(|_| rng.gen_range(0..vocab)).collect();
        let y: Vec<usize> = (0..batch * seq).map(|_| rng.gen_range(0..vocab)).collect();
        let (t, cpu) = (Instant::now(), process_cpu_seconds());
        let (w, _) = mask_weights(dev, &vec![true; batch * seq], (batch, seq));
        let logits = model.logits_traced(dev.tensor_from_vec(x, (batch, seq)), Gradients::leaky());
        let loss = masked_cross_entropy(logits, dev.tensor_from_vec(y, (batch, seq)), w);
        let plain = loss.retaped::<NoneTape>();
        let mut grads = loss.backward();
        optim.step(model.as_mut(), &mut grads, 1e-4)?;
        // The loss is read as training reads it, after the update: on CUDA, which runs
        // asynchronously, that read also waits for the step before the clock is read.
        std::hint::black_box(crate::util::readback::scalar(&plain));
        if i >= warmup {
            times.push(t.elapsed().as_secs_f64());
            cpu_times.push(process_cpu_seconds() - cpu);
        }
    }
    let reads = (crate::util::readback::count() - reads_before) as f64 / (steps + warmup) as f64;
    let fastest = times.iter().copied().fold(f64::MAX, f64::min);
    let step = median(times);
    let tokens = (batch * seq) as f64;
    let flops = cfg.flops_per_token(params, seq) * tokens / step;
    Ok(TrainBench {
        preset: preset.into(),
        vocab: cfg.vocab_size,
        batch,
        seq,
        params,
        ms_per_step: step * 1e3,
        ms_per_step_min: fastest * 1e3,
        cpu_ms_per_step: median(cpu_times) * 1e3,
        tokens_per_sec: tokens / step,
        gflops: flops / 1e9,
        mfu: flops / 1e9 / peak,
        reads_per_step: reads,
    })
}

/// Tokens per second generating up to the full context, with and without the KV cache.
pub fn bench_generate<D: Backend>(
    dev: &D,
    preset: &str,
    vocab: usize,
    context: usize,
) -> Result<GenBench> {
    let cfg = model_config(preset, vocab)?;
    let model: Box<dyn LanguageModel<D>> = build_model(&cfg, dev, 0)?;
    let prompt = vec![1u32, 2, 3, 4];
    let new = context.min(cfg.n_ctx) - prompt.len();
    let run = |use_cache: bool| {
        // Greedy, so that the two runs must agree; the cache is what is measured.
        let mut opts = SampleOptions::from(SampleSettings::greedy(new));
        opts.use_cache = use_cache;
        let t = Instant::now();
        let out = generate(
            model.as_ref(),
            &prompt,
            1,
            vocab,
            &opts,
            &mut rand::rngs::mock::StepRng::new(0, 1),
        );
        (new as f64 / t.elapsed().as_secs_f64(), out)
    };
    let (cached, a) = run(true);
    let (uncached, b) = run(false);
    let batched = GEN_BATCHES
        .iter()
        .map(|&batch| batched_gen(model.as_ref(), vocab, batch))
        .collect();
    Ok(GenBench {
        batched,
        preset: preset.into(),
        context: new + prompt.len(),
        cached_tokens_per_sec: cached,
        uncached_tokens_per_sec: uncached,
        speedup: cached / uncached,
        identical_greedy_output: a == b,
    })
}

/// Tokens per second answering `batch` different prompts together: prompts of 16 to 47
/// tokens, 64 new tokens each (greedy, no stop), as evaluation and serving ask; and the
/// device-to-host reads and host-to-device uploads per decode step (this thread's, prefill
/// included).
fn batched_gen<D: Backend>(model: &dyn LanguageModel<D>, vocab: usize, batch: usize) -> BatchedGen {
    let new = 64.min(model.config().n_ctx / 2);
    let requests: Vec<Request> = (0..batch)
        .map(|i| Request {
            prompt: (0..16 + i % 32)
                .map(|t| ((t * 7 + i) % (vocab - 1) + 1) as u32)
                .collect(),
            opts: SampleSettings::greedy(new).into(),
            seed: i as u64,
        })
        .collect();
    let t = Instant::now();
    let reads_before = crate::util::readback::count();
    let uploads_before = crate::util::upload::count();
    let out = generate_all(model, vocab, requests, batch);
    let reads = crate::util::readback::count() - reads_before;
    let uploads = crate::util::upload::count() - uploads_before;
    let tokens: usize = out.iter().map(|o| o.len()).sum();
    BatchedGen {
        batch,
        tokens_per_sec: tokens as f64 / t.elapsed().as_secs_f64(),
        reads_per_step: reads as f64 / new as f64,
        uploads_per_step: uploads as f64 / new as f64,
    }
}

/// CPU time this process has used, all threads (user + system), in seconds.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Peak resident memory of this process so far (Linux), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// The configurations of the peer benchmark: (preset, vocab, batch, seq). gpt2 (124M) is only
/// measured when asked for (it is meant for a GPU).
pub const CONFIGS: &[(&str, usize, usize, usize)] = &[
    ("nano", 128, 16, 64),
    ("small", 128, 12, 64),
    ("medium", 128, 8, 256),
    ("gpt2", 8192, 8, 1024),
];

/// The benchmark on `dev`; `device` names it in the report.
pub fn run_bench<D: Backend>(
    dev: &D,
    device: &str,
    presets: &[String],
    steps: usize,
    generation: bool,
) -> Result<BenchReport> {
    let peak = matmul_peak(dev, if device == "cpu" { 1536 } else { 4096 }, 10);
    let mut train = Vec::new();
    let mut gen = Vec::new();
    for &(preset, vocab, batch, seq) in CONFIGS {
        let wanted = if presets.is_empty() {
            preset != "gpt2"
        } else {
            presets.iter().any(|p| p == preset)
        };
        if !wanted {
            continue;
        }
        let t = bench_train(dev, preset, vocab, batch, seq, steps, peak, None, false)?;
        eprintln!(
            "{preset:>7} train: {:.1} ms/step (fastest {:.1}), {:.0} tok/s, {:.1} GFLOP/s, MFU {:.1}%",
            t.ms_per_step,
            t.ms_per_step_min,
            t.tokens_per_sec,
            t.gflops,
            100.0 * t.mfu
        );
        train.push(t);
        if !generation {
            continue;
        }
        let g = bench_generate(dev, preset, vocab, 256)?;
        eprintln!(
            "{preset:>7} generate: {:.0} tok/s cached, {:.0} uncached ({:.1}x), same output: {}",
            g.cached_tokens_per_sec,
            g.uncached_tokens_per_sec,
            g.speedup,
            g.identical_greedy_output
        );
        let batched: Vec<String> = g
            .batched
            .iter()
            .map(|b| format!("{:.0} at batch {}", b.tokens_per_sec, b.batch))
            .collect();
        eprintln!("{preset:>7} generate: tok/s {}", batched.join(", "));
        gen.push(g);
    }
    Ok(BenchReport {
        device: device.to_string(),
        threads: rayon::current_num_threads(),
        matmul_peak_gflops: peak,
        train,
        generate: gen,
        peak_rss_mb: peak_rss_mb(),
    })
}
