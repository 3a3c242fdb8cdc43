//! The training loop every stage shares. A stage supplies an `Objective` (how to turn the
//! model into gradients for one step, and how to evaluate it); the loop owns the optimiser,
//! the schedule, logging, evaluation, checkpoints, resume, the NaN guard and Ctrl-C.

use super::checkpoint::{
    encode_tensors, load_weights_from, model_tensors, read_tensors, save_model,
};
use super::optim::{AdamW, AdamWConfig, LrSchedule};
use crate::model::{Backend, LanguageModel};
use crate::results::{MetricsWriter, METRICS_FILE, RESUME_FILE};
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use dfdx::tensor::Gradients;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Set by the Ctrl-C / SIGTERM handler; the loop checkpoints and stops at the next step.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether a training loop is running (and so will act on `INTERRUPTED`).
static TRAINING: AtomicBool = AtomicBool::new(false);

/// What Ctrl-C / SIGTERM does: inside a training loop, ask it to checkpoint and stop; outside
/// one (loading data, sampling, reports: every file there is written atomically), or when
/// asked a second time, exit at once.
pub fn on_interrupt() {
    if !TRAINING.load(Ordering::SeqCst) || INTERRUPTED.swap(true, Ordering::SeqCst) {
        eprintln!("\ninterrupted");
        std::process::exit(130);
    }
    eprintln!("\ninterrupt: saving a checkpoint at the next step...");
}

/// Marks a training loop as running for as long as it lives.
struct TrainingGuard;

impl TrainingGuard {
    fn new() -> Self {
        TRAINING.store(true, Ordering::SeqCst);
        TrainingGuard
    }
}

impl Drop for TrainingGuard {
    fn drop(&mut self) {
        TRAINING.store(false, Ordering::SeqCst);
    }
}

pub type Metrics = Vec<(String, f64)>;

#[derive(Clone, Debug)]
pub struct TrainSettings {
    pub stage: String,
    pub steps: u64,
    pub schedule: LrSchedule,
    pub adamw: AdamWConfig,
    /// 0 = only at the end.
    pub eval_every: u64,
    /// 0 = only at the end and on interrupt.
    pub checkpoint_every: u64,
    pub seed: u64,
    /// Training FLOPs per token, for the MFU column (0 = don't log it).
    pub flops_per_token: f64,
    /// The machine's fp32 peak in FLOP/s the MFU is measured against.
    pub peak_flops: f64,
}

pub struct StepOutput {
    pub loss: f64,
    /// Tokens pushed through forward + backward this step.
    pub tokens: u64,
    pub metrics: Metrics,
}

/// What the loop hands a stage for one step.
pub struct StepContext<'a, D: Backend> {
    pub model: &'a mut dyn LanguageModel<D>,
    pub step: u64,
    pub lr: f64,
    pub rng: &'a mut ChaCha8Rng,
    optim: &'a mut AdamW<D>,
    grad_norm: Option<f64>,
}

impl<'a, D: Backend> StepContext<'a, D> {
    /// Clips and applies `grads` (already averaged over micro-batches). Returns the grad norm.
    /// A non-finite gradient is refused before it can touch the weights.
    pub fn apply(&mut self, mut grads: Gradients<f32, D>) -> Result<f64> {
        let norm = self
            .optim
            .step(self.model, &mut grads, self.lr)
            .with_context(|| format!("step {}", self.step))?;
        self.grad_norm = Some(norm);
        Ok(norm)
    }
}

/// Named tensors and string values an objective keeps between steps.
#[derive(Default)]
pub struct ObjectiveState {
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub meta: HashMap<String, String>,
}

pub trait Objective<D: Backend> {
    fn step(&mut self, ctx: &mut StepContext<'_, D>) -> Result<StepOutput>;
    /// Held-out metrics, named `val/...` by convention.
    fn evaluate(&mut self, model: &dyn LanguageModel<D>) -> Result<Metrics>;
    /// State that changes from step to step besides the model and its optimizer (PPO's value
    /// model and its optimizer): saved with each checkpoint so a resume continues exactly.
    fn save_state(&mut self) -> Result<ObjectiveState> {
        Ok(ObjectiveState::default())
    }
    /// Restores what `save_state` returned.
    fn load_state(&mut self, _state: ObjectiveState) -> Result<()> {
        Ok(())
    }
}

/// Progress: a bar on a terminal, log lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    stage: String,
    total: u64,
}

impl Progress {
    fn new(stage: &str, total: u64, start: u64) -> Self {
        let bar = crate::util::stdout_is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
                )
                .unwrap()
                .progress_chars("=> "),
            );
            bar.set_prefix(stage.to_string());
            bar.set_position(start);
            bar
        });
        Self {
            bar,
            stage: stage.to_string(),
            total,
        }
    }
    fn step(&self, step: u64, msg: String, log_line: bool) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(step);
                bar.set_message(msg);
            }
            None if log_line => println!("[{}] step {step}/{} {msg}", self.stage, self.total),
            None => {}
        }
    }
    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What a stage cost; its final metrics are in `metrics.csv` (see `results::summary`).
pub struct TrainResult {
    pub tokens: u64,
    pub wall_s: f64,
}

/// Runs (or resumes) training of `model` in `dir`, leaving the final weights there.
pub fn train<D: Backend>(
    model: &mut dyn LanguageModel<D>,
    objective: &mut dyn Objective<D>,
    settings: &TrainSettings,
    dir: &Path,
) -> Result<TrainResult> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    remove_stale_temporaries(dir);
    let _training = TrainingGuard::new();
    let mut optim = AdamW::new(settings.adamw);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let resume_path = dir.join(RESUME_FILE);
    let metrics_path = dir.join(METRICS_FILE);
    let (mut step, mut tokens, mut wall_before) = (0u64, 0u64, 0f64);
    let mut metrics;
    if resume_path.exists() {
        let r = read_resume(&resume_path).with_context(|| {
            format!(
                "cannot resume stage `{}` (delete {} to train the stage from its start)",
                settings.stage,
                resume_path.display()
            )
        })?;
        let what = resume_path.display().to_string();
        load_weights_from(model, &r.tensors, MODEL_PREFIX, &what)?;
        optim
            .import_state(model, r.adam_t, &r.moments)
            .with_context(|| what.clone())?;
        objective
            .load_state(r.objective)
            .with_context(|| what.clone())?;
        rng = r.rng;
        (step, tokens, wall_before) = (r.step, r.tokens, r.wall_s);
        metrics = MetricsWriter::open_existing(&metrics_path)?;
        metrics.truncate_after(step);
        println!(
            "[{}] resuming from step {step} ({})",
            settings.stage,
            resume_path.display()
        );
    } else {
        metrics =
            MetricsWriter::create(&metrics_path, &["loss", "lr", "grad_norm", "tok_per_sec"])?;
    }

    let progress = Progress::new(&settings.stage, settings.steps, step);
    if step == 0 {
        // The held-out metrics before any update: the "before" of every before/after comparison
        // (the base model's exact match, the SFT model's preference accuracy...).
        let val = objective.evaluate(model)?;
        if !val.is_empty() {
            let shown: Vec<String> = val.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            progress.println(format!("[{}] step 0: {}", settings.stage, shown.join(" ")));
            let row: Vec<(&str, f64)> = val.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            metrics.log(0, 0, &row)?;
        }
    }
    let started = Instant::now();
    let mut window = (Instant::now(), 0u64);
    let mut last_checkpoint: Option<u64> = (step > 0).then_some(step);
    while step < settings.steps {
        if INTERRUPTED.load(Ordering::SeqCst) {
            save_checkpoint(
                model,
                &mut optim,
                objective,
                &rng,
                step,
                tokens,
                wall_before + started.elapsed().as_secs_f64(),
                dir,
                &mut metrics,
            )?;
            progress.finish();
            bail!(
                "interrupted at step {step} of stage `{}`; checkpoint saved to {} — run the same command to resume",
                settings.stage,
                dir.display()
            );
        }
        let lr = settings.schedule.at(step);
        let mut ctx = StepContext {
            model: &mut *model,
            step,
            lr,
            rng: &mut rng,
            optim: &mut optim,
            grad_norm: None,
        };
        let out = objective
            .step(&mut ctx)
            .map_err(|e| guard_message(e, step, &settings.stage, last_checkpoint, dir))?;
        let grad_norm = ctx.grad_norm;
        if !out.loss.is_finite() {
            bail!(guard_text(
                &format!("loss is {}", out.loss),
                step,
                &settings.stage,
                last_checkpoint,
                dir
            ));
        }
        step += 1;
        tokens += out.tokens;
        window.1 += out.tokens;
        let elapsed = window.0.elapsed().as_secs_f64().max(1e-9);
        let tok_per_sec = window.1 as f64 / elapsed;
        let mut row: Vec<(String, f64)> = vec![
            ("loss".into(), out.loss),
            ("lr".into(), lr),
            ("tok_per_sec".into(), tok_per_sec),
        ];
        if let Some(n) = grad_norm {
            row.push(("grad_norm".into(), n));
        }
        if settings.flops_per_token > 0.0 && settings.peak_flops > 0.0 {
            row.push((
                "mfu".into(),
                tok_per_sec * settings.flops_per_token / settings.peak_flops,
            ));
        }
        row.extend(out.metrics);
        let is_last = step == settings.steps;
        let eval_due = is_last || (settings.eval_every > 0 && step % settings.eval_every == 0);
        if eval_due {
            let eval_start = Instant::now();
            let val = objective.evaluate(model)?;
            let shown: Vec<String> = val.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            progress.println(format!(
                "[{}] step {step}: loss {:.4} {}",
                settings.stage,
                out.loss,
                shown.join(" ")
            ));
            row.extend(val);
            // Evaluation time is not training throughput.
            window.0 += eval_start.elapsed();
        }
        let row_refs: Vec<(&str, f64)> = row.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        metrics.log(step, tokens, &row_refs)?;
        progress.step(
            step,
            format!("loss {:.4} {:.0} tok/s", out.loss, tok_per_sec),
            step % 50 == 0,
        );
        if step % 20 == 0 {
            window = (Instant::now(), 0);
        }
        let checkpoint_due = settings.checkpoint_every > 0 && step % settings.checkpoint_every == 0;
        if checkpoint_due && !is_last {
            save_checkpoint(
                model,
                &mut optim,
                objective,
                &rng,
                step,
                tokens,
                wall_before + started.elapsed().as_secs_f64(),
                dir,
                &mut metrics,
            )?;
            last_checkpoint = Some(step);
        }
    }
    progress.finish();
    metrics.flush()?;
    save_model(model, dir)?;
    // The finished stage no longer needs its resume state.
    let _ = std::fs::remove_file(&resume_path);
    Ok(TrainResult {
        tokens,
        wall_s: wall_before + started.elapsed().as_secs_f64(),
    })
}

fn guard_text(what: &str, step: u64, stage: &str, last: Option<u64>, dir: &Path) -> String {
    let kept = match last {
        Some(s) => format!(
            "the last good checkpoint (step {s}) is kept in {}",
            dir.display()
        ),
        None => "no checkpoint was written yet (set checkpoint_every to keep one)".to_string(),
    };
    format!("stage `{stage}` stopped at step {step}: {what}; {kept}. Lower the learning rate or check the data.")
}

fn guard_message(
    e: anyhow::Error,
    step: u64,
    stage: &str,
    last: Option<u64>,
    dir: &Path,
) -> anyhow::Error {
    if format!("{e:#}").contains("gradient norm is") {
        anyhow::anyhow!(guard_text(&format!("{e:#}"), step, stage, last, dir))
    } else {
        e
    }
}

/// Prefixes of the tensors in a resume file.
const MODEL_PREFIX: &str = "model/";
const OBJECTIVE_PREFIX: &str = "objective/";

struct ResumeState {
    step: u64,
    tokens: u64,
    wall_s: f64,
    adam_t: i32,
    rng: ChaCha8Rng,
    /// Every tensor of the file; the model's weights are under `MODEL_PREFIX`.
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    moments: HashMap<String, (Vec<f32>, Vec<f32>)>,
    objective: ObjectiveState,
}

/// A temporary file of an atomic write that a killed process never renamed.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The whole resume state (weights, optimizer moments, objective state, step, RNG) is one
/// file written atomically, so a kill at any moment leaves either the previous checkpoint or
/// the new one, never a mix. `model.safetensors` beside it is a copy for `generate`/`probe`.
#[allow(clippy::too_many_arguments)]
fn save_checkpoint<D: Backend>(
    model: &mut dyn LanguageModel<D>,
    optim: &mut AdamW<D>,
    objective: &mut dyn Objective<D>,
    rng: &ChaCha8Rng,
    step: u64,
    tokens: u64,
    wall_s: f64,
    dir: &Path,
    metrics: &mut MetricsWriter,
) -> Result<()> {
    // Rows up to `step` must be on disk before the resume file says `step`; rows past it
    // (written by a later flush) are dropped on resume.
    metrics.flush()?;
    let mut tensors = Vec::new();
    for (name, shape, values) in model_tensors(model)? {
        tensors.push((format!("{MODEL_PREFIX}{name}"), shape, values));
    }
    for (name, m, v) in optim.export_state(model)? {
        tensors.push((format!("m1/{name}"), vec![m.len()], m));
        tensors.push((format!("m2/{name}"), vec![v.len()], v));
    }
    let state = objective.save_state()?;
    for (name, shape, values) in state.tensors {
        tensors.push((format!("{OBJECTIVE_PREFIX}{name}"), shape, values));
    }
    let seed: String = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
    let mut meta = HashMap::from([
        ("step".to_string(), step.to_string()),
        ("tokens".to_string(), tokens.to_string()),
        ("wall_s".to_string(), wall_s.to_string()),
        ("adam_t".to_string(), optim.t.to_string()),
        ("rng_seed".to_string(), seed),
        ("rng_stream".to_string(), rng.get_stream().to_string()),
        ("rng_word_pos".to_string(), rng.get_word_pos().to_string()),
    ]);
    for (k, v) in state.meta {
        meta.insert(format!("{OBJECTIVE_PREFIX}{k}"), v);
    }
    write_atomic(&dir.join(RESUME_FILE), &encode_tensors(&tensors, meta)?)?;
    save_model(model, dir)
}

fn read_resume(path: &Path) -> Result<ResumeState> {
    let (tensors, meta) = read_tensors(path)?;
    let get = |k: &str| -> Result<&String> {
        meta.get(k)
            .ok_or_else(|| anyhow::anyhow!("{}: resume state lacks `{k}`", path.display()))
    };
    let num = |k: &str| -> Result<u128> {
        get(k)?
            .parse()
            .with_context(|| format!("{}: bad `{k}`", path.display()))
    };
    let seed_hex = get("rng_seed")?;
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(seed_hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
            .with_context(|| format!("{}: bad rng_seed", path.display()))?;
    }
    let mut rng = ChaCha8Rng::from_seed(seed);
    rng.set_stream(num("rng_stream")? as u64);
    rng.set_word_pos(num("rng_word_pos")?);
    let mut moments: HashMap<String, (Vec<f32>, Vec<f32>)> = HashMap::new();
    let mut objective = ObjectiveState::default();
    for (name, (shape, values)) in &tensors {
        if let Some(p) = name.strip_prefix("m1/") {
            moments.entry(p.to_string()).or_default().0 = values.clone();
        } else if let Some(p) = name.strip_prefix("m2/") {
            moments.entry(p.to_string()).or_default().1 = values.clone();
        } else if let Some(p) = name.strip_prefix(OBJECTIVE_PREFIX) {
            objective
                .tensors
                .push((p.to_string(), shape.clone(), values.clone()));
        }
    }
    for (k, v) in &meta {
        if let Some(k) = k.strip_prefix(OBJECTIVE_PREFIX) {
            objective.meta.insert(k.to_string(), v.clone());
        }
    }
    Ok(ResumeState {
        step: num("step")? as u64,
        tokens: num("tokens")? as u64,
        wall_s: get("wall_s")?.parse().unwrap_or(0.0),
        adam_t: num("adam_t")? as i32,
        rng,
        tensors,
        moments,
        objective,
    })
}

/// Where a stage keeps its files inside a run.
pub fn stage_dir(run_dir: &Path, stage: &str) -> PathBuf {
    run_dir.join(stage)
}
