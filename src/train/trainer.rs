//! The training loop every stage shares. A stage supplies an `Objective` (how to turn the
//! model into gradients for one step, and how to evaluate it); the loop owns the optimiser,
//! the schedule, logging, evaluation, checkpoints, resume, the NaN guard and Ctrl-C.

pub use super::checkpoint::ObjectiveState;
use super::checkpoint::ResumeState;
use super::optim::{AdamW, AdamWConfig, LrSchedule, NonFiniteGradient};
use crate::model::{Backend, LanguageModel};
use crate::results::weights::{load_weights_from, model_tensors, save_model};
use crate::results::{MetricsWriter, METRICS_FILE, RESUME_FILE};
use anyhow::{bail, Context, Result};
use dfdx::tensor::Gradients;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
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
    extra: Option<&'a mut dyn ExtraLoss<D>>,
}

/// A loss added to every update an objective applies, whatever the objective: InstructGPT's
/// PPO-ptx keeps an SFT loss in every RLHF update so that the policy keeps what SFT taught.
pub trait ExtraLoss<D: Backend> {
    /// `grads` with this loss's gradients added (traced into the same gradients, so one
    /// optimiser step sees the sum).
    fn add(
        &mut self,
        model: &dyn LanguageModel<D>,
        grads: Gradients<f32, D>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Gradients<f32, D>>;
}

impl<'a, D: Backend> StepContext<'a, D> {
    /// Clips and applies `grads` (already averaged over micro-batches), with the extra loss's
    /// gradients added when there is one. Returns the grad norm. A non-finite gradient is
    /// refused before it can touch the weights.
    pub fn apply(&mut self, mut grads: Gradients<f32, D>) -> Result<f64> {
        if let Some(extra) = self.extra.as_mut() {
            grads = extra.add(&*self.model, grads, self.rng)?;
        }
        let norm = self
            .optim
            .step(self.model, &mut grads, self.lr)
            .with_context(|| format!("step {}", self.step))?;
        self.grad_norm = Some(norm);
        Ok(norm)
    }

    /// Runs `f` (an objective's step) with `extra` added to every update it applies.
    pub fn with_extra_loss<R>(
        &mut self,
        extra: &mut dyn ExtraLoss<D>,
        f: impl FnOnce(&mut StepContext<'_, D>) -> R,
    ) -> R {
        let mut inner = StepContext {
            model: &mut *self.model,
            step: self.step,
            lr: self.lr,
            rng: &mut *self.rng,
            optim: &mut *self.optim,
            grad_norm: None,
            extra: Some(extra),
        };
        let out = f(&mut inner);
        self.grad_norm = inner.grad_norm.or(self.grad_norm);
        out
    }
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
    let mut run = Run::start(model, objective, settings, dir)?;
    if run.step == 0 {
        run.log_initial_eval()?;
    }
    while run.step < settings.steps {
        if INTERRUPTED.load(Ordering::SeqCst) {
            return Err(run.stop_interrupted());
        }
        run.train_step()?;
    }
    run.finish()
}

/// The state of one stage's training loop.
struct Run<'a, D: Backend> {
    model: &'a mut dyn LanguageModel<D>,
    objective: &'a mut dyn Objective<D>,
    settings: &'a TrainSettings,
    dir: &'a Path,
    optim: AdamW<D>,
    rng: ChaCha8Rng,
    step: u64,
    tokens: u64,
    /// Wall time spent before a resume.
    wall_before: f64,
    started: Instant,
    /// Start and tokens of the current throughput window.
    window: (Instant, u64),
    last_checkpoint: Option<u64>,
    metrics: MetricsWriter,
    progress: Progress,
}

impl<'a, D: Backend> Run<'a, D> {
    /// A fresh loop, or one continued from the stage's resume file.
    fn start(
        model: &'a mut dyn LanguageModel<D>,
        objective: &'a mut dyn Objective<D>,
        settings: &'a TrainSettings,
        dir: &'a Path,
    ) -> Result<Self> {
        let resume_path = dir.join(RESUME_FILE);
        let metrics_path = dir.join(METRICS_FILE);
        let mut optim = AdamW::new(settings.adamw);
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let (mut step, mut tokens, mut wall_before) = (0u64, 0u64, 0f64);
        let metrics = if resume_path.exists() {
            let r = ResumeState::read(&resume_path).with_context(|| {
                format!(
                    "cannot resume stage `{}` (delete {} to train the stage from its start)",
                    settings.stage,
                    resume_path.display()
                )
            })?;
            let what = resume_path.display().to_string();
            load_weights_from(model, &r.model, "", &what)?;
            optim
                .import_state(model, r.adam_t, &r.moments)
                .with_context(|| what.clone())?;
            objective
                .load_state(r.objective)
                .with_context(|| what.clone())?;
            rng = r.rng;
            (step, tokens, wall_before) = (r.step, r.tokens, r.wall_s);
            let mut metrics = MetricsWriter::open_existing(&metrics_path)?;
            metrics.truncate_after(step);
            println!("[{}] resuming from step {step} ({what})", settings.stage);
            metrics
        } else {
            MetricsWriter::create(&metrics_path, &["loss", "lr", "grad_norm", "tok_per_sec"])?
        };
        Ok(Run {
            progress: Progress::new(&settings.stage, settings.steps, step),
            model,
            objective,
            settings,
            dir,
            optim,
            rng,
            step,
            tokens,
            wall_before,
            started: Instant::now(),
            window: (Instant::now(), 0),
            last_checkpoint: (step > 0).then_some(step),
            metrics,
        })
    }

    /// The held-out metrics before any update: the "before" of every before/after comparison
    /// (the base model's exact match, the SFT model's preference accuracy...).
    fn log_initial_eval(&mut self) -> Result<()> {
        let val = self.objective.evaluate(self.model)?;
        if !val.is_empty() {
            let shown: Vec<String> = val.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            let stage = &self.settings.stage;
            self.progress
                .println(format!("[{stage}] step 0: {}", shown.join(" ")));
            let row: Vec<(&str, f64)> = val.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            self.metrics.log(0, 0, &row)?;
        }
        Ok(())
    }

    /// One optimiser step, its metrics row, and the evaluation and checkpoint due after it.
    fn train_step(&mut self) -> Result<()> {
        let settings = self.settings;
        let step = self.step;
        let lr = settings.schedule.at(step);
        let mut ctx = StepContext {
            model: &mut *self.model,
            step,
            lr,
            rng: &mut self.rng,
            optim: &mut self.optim,
            grad_norm: None,
            extra: None,
        };
        let result = self.objective.step(&mut ctx);
        let grad_norm = ctx.grad_norm;
        let out = result.map_err(|e| self.guard_message(e))?;
        if !out.loss.is_finite() {
            bail!(self.guard_text(&format!("loss is {}", out.loss)));
        }
        self.step += 1;
        self.tokens += out.tokens;
        self.window.1 += out.tokens;
        let elapsed = self.window.0.elapsed().as_secs_f64().max(1e-9);
        let tok_per_sec = self.window.1 as f64 / elapsed;
        let mut row = self.train_row(out.loss, lr, tok_per_sec, grad_norm);
        row.extend(out.metrics);
        let step = self.step;
        let is_last = step == settings.steps;
        if is_last || (settings.eval_every > 0 && step % settings.eval_every == 0) {
            row.extend(self.evaluate(out.loss)?);
        }
        let row_refs: Vec<(&str, f64)> = row.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.metrics.log(step, self.tokens, &row_refs)?;
        self.progress.step(
            step,
            format!("loss {:.4} {:.0} tok/s", out.loss, tok_per_sec),
            step % 50 == 0,
        );
        if step % 20 == 0 {
            self.window = (Instant::now(), 0);
        }
        let checkpoint_due = settings.checkpoint_every > 0 && step % settings.checkpoint_every == 0;
        if checkpoint_due && !is_last {
            self.save_checkpoint()?;
            self.last_checkpoint = Some(step);
        }
        Ok(())
    }

    /// What every step logs: loss, learning rate, throughput, gradient norm and MFU.
    fn train_row(&self, loss: f64, lr: f64, tok_per_sec: f64, grad_norm: Option<f64>) -> Metrics {
        let settings = self.settings;
        let mut row: Metrics = vec![
            ("loss".into(), loss),
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
        row
    }

    /// The held-out metrics after this step, printed with the training loss.
    fn evaluate(&mut self, loss: f64) -> Result<Metrics> {
        let eval_start = Instant::now();
        let val = self.objective.evaluate(self.model)?;
        let shown: Vec<String> = val.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        self.progress.println(format!(
            "[{}] step {}: loss {loss:.4} {}",
            self.settings.stage,
            self.step,
            shown.join(" ")
        ));
        // Evaluation time is not training throughput.
        self.window.0 += eval_start.elapsed();
        Ok(val)
    }

    fn wall_s(&self) -> f64 {
        self.wall_before + self.started.elapsed().as_secs_f64()
    }

    /// Writes the resume file (and a copy of the weights beside it, for `generate`/`probe`).
    fn save_checkpoint(&mut self) -> Result<()> {
        // Rows up to `step` must be on disk before the resume file says `step`; rows past it
        // (written by a later flush) are dropped on resume.
        self.metrics.flush()?;
        let model = model_tensors(self.model)?
            .into_iter()
            .map(|(name, shape, values)| (name, (shape, values)))
            .collect();
        let moments = self
            .optim
            .export_state(self.model)?
            .into_iter()
            .map(|(name, m, v)| (name, (m, v)))
            .collect();
        let state = ResumeState {
            step: self.step,
            tokens: self.tokens,
            wall_s: self.wall_s(),
            adam_t: self.optim.t,
            rng: self.rng.clone(),
            model,
            moments,
            objective: self.objective.save_state()?,
        };
        state.write(&self.dir.join(RESUME_FILE))?;
        save_model(self.model, self.dir)
    }

    /// Checkpoints and stops: the same command resumes from here.
    fn stop_interrupted(mut self) -> anyhow::Error {
        if let Err(e) = self.save_checkpoint() {
            return e;
        }
        self.progress.finish();
        anyhow::anyhow!(
            "interrupted at step {} of stage `{}`; checkpoint saved to {} — run the same command to resume",
            self.step,
            self.settings.stage,
            self.dir.display()
        )
    }

    fn finish(mut self) -> Result<TrainResult> {
        self.progress.finish();
        self.metrics.flush()?;
        save_model(self.model, self.dir)?;
        // The finished stage no longer needs its resume state.
        let _ = std::fs::remove_file(self.dir.join(RESUME_FILE));
        Ok(TrainResult {
            tokens: self.tokens,
            wall_s: self.wall_s(),
        })
    }

    /// The NaN guard's message: the stage, the step, what went wrong and what was kept.
    fn guard_text(&self, what: &str) -> String {
        let kept = match self.last_checkpoint {
            Some(s) => format!(
                "the last good checkpoint (step {s}) is kept in {}",
                self.dir.display()
            ),
            None => "no checkpoint was written yet (set checkpoint_every to keep one)".to_string(),
        };
        format!(
            "stage `{}` stopped at step {}: {what}; {kept}. Lower the learning rate or check the data.",
            self.settings.stage, self.step
        )
    }

    /// A non-finite gradient becomes the guard's message; any other error passes through.
    fn guard_message(&self, e: anyhow::Error) -> anyhow::Error {
        if e.chain().any(|c| c.is::<NonFiniteGradient>()) {
            anyhow::anyhow!(self.guard_text(&format!("{e:#}")))
        } else {
            e
        }
    }
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
