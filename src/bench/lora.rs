//! `gptlab bench --lora`: an SFT-like training step (forward, backward, AdamW) with LoRA
//! (rank 8 on attn + mlp) against full fine-tuning, on the `gpt2` preset at batch 4 × 256 on
//! the CPU, and the memory of a policy with its frozen reference (the base-only view) against
//! one copy of the weights.
//!
//! Both are also measured with gradient checkpointing (each block's activations recomputed
//! in the backward, not kept): LoRA's memory without its activations, at the time of one more
//! forward.
//!
//! Memory is the peak resident set (VmHWM) of a process that does nothing else: each
//! measurement runs in a child process (this binary, `bench --lora-child MODE`), so one
//! mode's allocations (or the allocator's and the buffer pool's retained memory) cannot
//! inflate the other's. Children run in alternating order (full, LoRA, LoRA checkpointed,
//! full checkpointed, then the reverse, ...), so that load from other work on the machine
//! falls on every mode alike.

use super::{bench_train, peak_rss_mb, TrainBench};
use crate::model::presets::{build_model, model_config};
use crate::model::LoraSpec;
use anyhow::{bail, Context, Result};
use dfdx::prelude::*;
use serde::{Deserialize, Serialize};
use std::process::Command;

pub const PRESET: &str = "gpt2";
pub const VOCAB: usize = 8192;
pub const BATCH: usize = 4;
pub const SEQ: usize = 256;
/// Rounds of children (one of each mode).
pub const PAIRS: usize = 2;

/// The setting: rank 8, alpha 16, no dropout, attn + mlp.
pub fn spec() -> LoraSpec {
    LoraSpec {
        rank: 8,
        alpha: 16.0,
        dropout: 0.0,
        targets: vec!["attn".into(), "mlp".into()],
    }
}

/// One child's training steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRun {
    pub mode: String,
    /// Trainable parameters (what the optimiser holds moments for).
    pub trainable_params: usize,
    pub ms_per_step: f64,
    pub ms_per_step_min: f64,
    /// CPU time of a step (all threads): the steadier figure on a shared machine.
    pub cpu_ms_per_step: f64,
    /// The child's peak resident memory: weights, gradients, moments, activations.
    pub peak_rss_mb: f64,
    /// A forward of the same batch without a tape (median): about what recomputing the
    /// activations in the backward (gradient checkpointing) would add to a step.
    pub forward_ms: f64,
}

/// Resident memory (VmRSS) of one child as it builds a policy and its reference.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceMemory {
    /// The process before any model.
    pub empty_mb: f64,
    /// + one model: one copy of the weights.
    pub one_copy_mb: f64,
    /// + LoRA adapters on it (the policy).
    pub policy_mb: f64,
    /// + its base-only view (the reference of DPO, KTO, PPO).
    pub policy_and_reference_mb: f64,
    /// + a second, separately built model: what a reference copy would cost.
    pub with_a_second_copy_mb: f64,
}

/// One mode over another, per round of children (each round run back to back): peak
/// memory, wall time and CPU time of a step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ratios {
    pub memory: Vec<f64>,
    pub time: Vec<f64>,
    pub cpu_time: Vec<f64>,
}

impl Ratios {
    fn push(&mut self, of: &StepRun, over: &StepRun) {
        self.memory.push(of.peak_rss_mb / over.peak_rss_mb);
        self.time.push(of.ms_per_step / over.ms_per_step);
        self.cpu_time
            .push(of.cpu_ms_per_step / over.cpu_ms_per_step);
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LoraBench {
    pub preset: String,
    pub vocab: usize,
    pub batch: usize,
    pub seq: usize,
    pub spec: LoraSpec,
    /// Every child, in the order run.
    pub runs: Vec<StepRun>,
    /// LoRA over full fine-tuning (neither checkpointed).
    pub lora_over_full: Ratios,
    /// Checkpointed LoRA over full fine-tuning (not checkpointed).
    pub lora_checkpointed_over_full: Ratios,
    /// Checkpointed LoRA over checkpointed full fine-tuning.
    pub lora_over_full_both_checkpointed: Ratios,
    pub reference: ReferenceMemory,
    /// (policy + reference) / (one copy + adapters), each above the empty process.
    pub reference_ratio: f64,
}

/// What a child prints: its measurement as one JSON line.
pub fn child(mode: &str, steps: usize) -> Result<String> {
    let json = match mode {
        "reference" => serde_json::to_string(&reference_memory()?)?,
        _ if MODES.contains(&mode) => serde_json::to_string(&step_run(mode, steps)?)?,
        other => {
            bail!("unknown --lora-child mode {other:?}: expected reference or one of {MODES:?}")
        }
    };
    Ok(json)
}

/// The training modes, in the order of a round: full, LoRA, then both checkpointed.
pub const MODES: [&str; 4] = ["full", "lora", "lora-checkpointed", "full-checkpointed"];

fn step_run(mode: &str, steps: usize) -> Result<StepRun> {
    let lora = mode.starts_with("lora").then(spec);
    let checkpoint = mode.ends_with("checkpointed");
    let t: TrainBench = bench_train(
        &Cpu::default(),
        PRESET,
        VOCAB,
        BATCH,
        SEQ,
        steps,
        1.0,
        lora.as_ref(),
        checkpoint,
    )?;
    let peak_rss_mb = peak_rss_mb();
    Ok(StepRun {
        mode: mode.into(),
        trainable_params: t.params,
        ms_per_step: t.ms_per_step,
        ms_per_step_min: t.ms_per_step_min,
        cpu_ms_per_step: t.cpu_ms_per_step,
        peak_rss_mb,
        forward_ms: forward_ms(lora.as_ref(), steps)?,
    })
}

/// The median time of an untraced forward of one batch, after one untimed.
fn forward_ms(lora: Option<&LoraSpec>, steps: usize) -> Result<f64> {
    let dev = Cpu::default();
    let mut model = build_model(&model_config(PRESET, VOCAB)?, &dev, 0)?;
    if let Some(spec) = lora {
        model.add_adapters(spec, 1)?;
    }
    let tokens: Vec<usize> = (0..BATCH * SEQ).map(|i| (i * 7919) % VOCAB).collect();
    let mut times = Vec::new();
    for _ in 0..=steps {
        let t = std::time::Instant::now();
        let logits = model.logits(dev.tensor_from_vec(tokens.clone(), (BATCH, SEQ)));
        std::hint::black_box(logits);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.remove(0);
    Ok(super::median(times))
}

fn reference_memory() -> Result<ReferenceMemory> {
    let dev = Cpu::default();
    let cfg = model_config(PRESET, VOCAB)?;
    let empty_mb = rss_mb();
    let mut policy = build_model(&cfg, &dev, 0)?;
    let one_copy_mb = rss_mb();
    policy.add_adapters(&spec(), 1)?;
    let policy_mb = rss_mb();
    let reference = policy.base_only();
    let policy_and_reference_mb = rss_mb();
    let second = build_model(&cfg, &dev, 1)?;
    let with_a_second_copy_mb = rss_mb();
    drop((reference, second));
    Ok(ReferenceMemory {
        empty_mb,
        one_copy_mb,
        policy_mb,
        policy_and_reference_mb,
        with_a_second_copy_mb,
    })
}

/// Current resident memory (Linux VmRSS), in MB.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn run_child<T: for<'de> Deserialize<'de>>(mode: &str, steps: usize) -> Result<T> {
    let exe = std::env::current_exe().context("finding the gptlab binary to run a child")?;
    let steps = steps.to_string();
    let out = Command::new(&exe)
        .args(["bench", "--lora-child", mode, "--steps", &steps])
        .output()
        .with_context(|| format!("running {} bench --lora-child {mode}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "bench child {mode} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("reading bench child {mode}: {line}"))
}

/// The comparison: `PAIRS` rounds of the four modes, alternating in order, then the
/// reference.
pub fn run(steps: usize) -> Result<LoraBench> {
    let mut runs = Vec::new();
    let mut ratios: [Ratios; 3] = Default::default();
    for round in 0..PAIRS {
        let mut order = MODES;
        if round % 2 == 1 {
            order.reverse();
        }
        let mut got: Vec<StepRun> = Vec::new();
        for mode in order {
            let run: StepRun = run_child(mode, steps)?;
            eprintln!(
                "{mode:>17}: {:.0} ms/step (fastest {:.0}, CPU {:.0}), peak {:.0} MB, forward alone {:.0} ms, {} trainable",
                run.ms_per_step,
                run.ms_per_step_min,
                run.cpu_ms_per_step,
                run.peak_rss_mb,
                run.forward_ms,
                run.trainable_params
            );
            got.push(run);
        }
        let of = |mode: &str| got.iter().find(|r| r.mode == mode).unwrap();
        let [full, lora, lora_ck, full_ck] = MODES.map(of);
        ratios[0].push(lora, full);
        ratios[1].push(lora_ck, full);
        ratios[2].push(lora_ck, full_ck);
        runs.extend(got);
    }
    let reference: ReferenceMemory = run_child("reference", steps)?;
    let above = |mb: f64| mb - reference.empty_mb;
    let reference_ratio = above(reference.policy_and_reference_mb) / above(reference.policy_mb);
    Ok(LoraBench {
        preset: PRESET.into(),
        vocab: VOCAB,
        batch: BATCH,
        seq: SEQ,
        spec: spec(),
        runs,
        lora_over_full: ratios[0].clone(),
        lora_checkpointed_over_full: ratios[1].clone(),
        lora_over_full_both_checkpointed: ratios[2].clone(),
        reference,
        reference_ratio,
    })
}
