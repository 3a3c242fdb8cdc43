//! Runs an experiment: results folder and run id, tokenizer, each stage in order (skipping
//! finished ones, taking ones with the same inputs from earlier runs, resuming interrupted
//! ones), then samples, probes, summary and report.

mod end_table;
mod identity;
mod pretrained;
mod report_again;
mod report_eval;
mod reuse;

pub use report_again::report_again;

pub use report_eval::{baseline_stage, compared_stages, judge_questions};

use crate::infer::probe::{continuation_prob, top_tokens};
use crate::infer::{is_chat, Ask, Prompt};
use crate::model::presets::{build_model, model_config};
use crate::model::{Backend, LanguageModel, ModelConfig};
use crate::results::meta::{write_meta, write_stage_record};
use crate::results::weights::{load_model, model_tensors};
use crate::results::{
    self, read_meta, read_stage_record, write_summary, CandidateProb, ProbeLine, RunMeta,
    SampleLine, StageMeta,
};
use crate::spec::{
    load_spec, rating_path, Device, LoadOptions, LoadedSpec, SampleSettings, Stage, StageKind,
};
use crate::stages::{load_stage_data, run_stage, StageData, StageEnv};
use crate::tokenizer::{Tokenizer, TokenizerKind};
use crate::util::lock::FileLock;
use crate::util::write_atomic;
use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub results_root: PathBuf,
    pub load: LoadOptions,
    pub reuse: Reuse,
}

/// Where a stage that this run has not finished may come from instead of training.
#[derive(Clone, Debug, PartialEq)]
pub enum Reuse {
    /// Any finished stage under the results root with the same identity (`identity.rs`).
    ByIdentity,
    /// Nowhere: every stage trains (`--no-reuse`).
    Off,
    /// This run folder's stage of the same name, and every stage must come from it: a new
    /// report of a trained run (`gptlab report RUN --set report...`).
    FromRun(PathBuf),
}

pub fn run_dir_for(loaded: &LoadedSpec, results_root: &Path) -> PathBuf {
    results::run_dir(results_root, &loaded.spec.name, &loaded.run_id)
}

fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn git_rev() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Loads the spec and runs it; returns the run folder.
pub fn run_spec(spec_path: &Path, opts: &RunOptions) -> Result<PathBuf> {
    let loaded = load_spec(spec_path, &opts.load)?;
    let run_dir = run_dir_for(&loaded, &opts.results_root);
    if read_meta(&run_dir).is_some_and(|m| m.complete) {
        println!("{}: already complete, nothing to do", run_dir.display());
        return Ok(run_dir);
    }
    run_loaded(&loaded, &run_dir, opts)?;
    Ok(run_dir)
}

/// Runs an already loaded spec into `run_dir`.
pub fn run_loaded(loaded: &LoadedSpec, run_dir: &Path, opts: &RunOptions) -> Result<()> {
    let seed = loaded.spec.seed;
    match loaded.spec.device {
        Device::Cpu => run_on(
            loaded,
            run_dir,
            opts,
            dfdx::tensor::Cpu::seed_from_u64(seed),
        ),
        #[cfg(feature = "cuda")]
        Device::Cuda => run_on(
            loaded,
            run_dir,
            opts,
            crate::model::device::open_cuda(seed)?,
        ),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => Err(crate::model::device::no_cuda_build())
            .with_context(|| format!("{}: device = \"cuda\"", loaded.path.display())),
    }
}

/// Every data file the spec names, opened and read: each stage's data (`None` for a stage
/// that reads ratings a feedback stage of this run writes: they do not exist yet, and the
/// tokenizer does not need them, since they are the run's own output), `ptx_data`, and the
/// report's evaluation files. `run` does this before training and `validate` does the same,
/// so errors in any file surface before hours of training, naming the file, line and key.
/// A pretrained base's configuration and tokenizer are checked here too.
pub fn read_all_data(loaded: &LoadedSpec) -> Result<Vec<Option<StageData>>> {
    pretrained::check(loaded)?;
    let spec = &loaded.spec;
    let datas: Vec<Option<StageData>> = spec
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (!reads_ratings(s))
                .then(|| read_stage(loaded, i, s))
                .transpose()
        })
        .collect::<Result<_>>()?;
    for (i, stage) in spec.stages.iter().enumerate() {
        if let Some(ptx_data) = &stage.ptx_data {
            crate::data::read_sft(ptx_data)
                .with_context(|| loaded.locate(&format!("stages[{i}].ptx_data")))?;
        }
    }
    report_eval::check_files(loaded)?;
    Ok(datas)
}

fn read_stage(loaded: &LoadedSpec, i: usize, s: &Stage) -> Result<StageData> {
    load_stage_data(s, loaded.spec.seed, &|key| {
        loaded.locate(&format!("stages[{i}].{key}"))
    })
}

fn run_on<D: Backend>(
    loaded: &LoadedSpec,
    run_dir: &Path,
    opts: &RunOptions,
    dev: D,
) -> Result<()> {
    let spec = &loaded.spec;
    // All data first, before a run folder exists that could be mistaken for a run.
    let datas = read_all_data(loaded)?;
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create the results folder {}", run_dir.display()))?;
    write_atomic(
        &run_dir.join(results::SPEC_FILE),
        loaded.resolved_toml.as_bytes(),
    )?;
    let mut meta = start_meta(loaded, run_dir)?;
    let tokenizer = tokenizer_for(loaded, run_dir, &datas)?;
    let cfg = match pretrained::base_config(loaded)? {
        Some(cfg) => cfg,
        None => model_config_for(loaded, &tokenizer)?,
    };
    meta.preset = cfg.preset.clone();
    meta.vocab_size = tokenizer.vocab_size();
    meta.block_size = spec.model.block_size;

    let identities = identity::stage_identities(spec, &run_dir.join(results::TOKENIZER_FILE))?;
    let peak_flops = peak_flops();
    for (i, (stage, data)) in spec.stages.iter().zip(&datas).enumerate() {
        let dir = run_dir.join(&stage.name);
        if results::done_marker(&dir).exists() {
            println!("[{}] already trained, skipping", stage.name);
            // A kill between writing done.json and meta.json leaves meta without the stage.
            if !meta.stages.iter().any(|s| s.name == stage.name) {
                meta.stages.push(read_stage_record(&dir)?);
            }
            continue;
        }
        // Held until the stage is in place: another run needing it waits, then takes it.
        let (_lock, source) = reusable(opts, &identities[i], run_dir, &stage.name)?;
        let sm = match source {
            Some(source) => take_stage(&source, &dir, &mut meta)?,
            None => {
                let env = StageEnv {
                    spec,
                    stage,
                    tokenizer: &tokenizer,
                    dev: dev.clone(),
                    dir: dir.clone(),
                    run_dir: run_dir.to_path_buf(),
                    block_size: spec.model.block_size,
                    peak_flops,
                };
                let late;
                let data = match data {
                    Some(data) => data,
                    None => {
                        late = read_stage(loaded, i, &with_ratings_from(stage, run_dir))?;
                        &late
                    }
                };
                make_stage(&env, &cfg, data, &identities[i], &mut meta)?
            }
        };
        meta.stages.retain(|s| s.name != stage.name);
        meta.stages.push(sm);
        write_meta(run_dir, &meta)?;
    }

    finish_run(loaded, run_dir, &tokenizer, &dev, meta)
}

/// Trains (or, for a feedback stage, rates) one stage in its folder and marks it finished.
fn make_stage<D: Backend>(
    env: &StageEnv<D>,
    cfg: &ModelConfig,
    data: &StageData,
    identity: &str,
    meta: &mut RunMeta,
) -> Result<StageMeta> {
    let mut sm = match (data, env.stage.pretrained_path()) {
        (StageData::Feedback { .. }, _) => rate_stage(env, data)?,
        (_, Some(path)) => pretrained::import_stage(&env.stage.name, path, &env.dir)?,
        (_, None) => train_stage(env, cfg, data, meta)?,
    };
    sm.identity = Some(identity.to_string());
    write_stage_record(&env.dir, &sm)?;
    println!(
        "[{}] done: {} tokens in {:.1}s ({:.0} tok/s)",
        sm.name, sm.tokens, sm.wall_s, sm.tok_per_sec
    );
    Ok(sm)
}

/// The finished stage folder this run may take instead of training `stage`, if any, and the
/// identity's lock, held until the stage is in place.
fn reusable(
    opts: &RunOptions,
    identity: &str,
    run_dir: &Path,
    stage: &str,
) -> Result<(Option<FileLock>, Option<PathBuf>)> {
    Ok(match &opts.reuse {
        Reuse::ByIdentity => {
            let lock = reuse::lock_identity(&opts.results_root, identity, stage)?;
            let found = reuse::find_finished(&opts.results_root, identity, run_dir);
            (Some(lock), found)
        }
        Reuse::Off => (None, None),
        Reuse::FromRun(run) => (None, Some(run.join(stage))),
    })
}

/// Fills the stage folder `dir` from the finished stage `source` of another run.
fn take_stage(source: &Path, dir: &Path, meta: &mut RunMeta) -> Result<StageMeta> {
    let sm = reuse::take_stage(source, dir)?;
    let from = sm.reused.clone().unwrap_or_default();
    // The parameter count is the source run's: this run builds no model for the stage.
    let source_params = read_meta(Path::new(&from.run)).map_or(0, |m| m.params);
    meta.params = meta.params.max(source_params);
    println!(
        "[{}] reused, not trained: same inputs as in {} ({})",
        sm.name, from.run, from.how
    );
    Ok(sm)
}

/// Once every stage has run: samples and probes, summary.json, the report's evaluation, the
/// completed meta.json and the report.
fn finish_run<D: Backend>(
    loaded: &LoadedSpec,
    run_dir: &Path,
    tokenizer: &Tokenizer,
    dev: &D,
    mut meta: RunMeta,
) -> Result<()> {
    let spec = &loaded.spec;
    write_samples_and_probes(loaded, run_dir, tokenizer, dev)?;
    let names: Vec<String> = spec.stages.iter().map(|s| s.name.clone()).collect();
    write_summary(run_dir, &names)?;
    report_eval::evaluate_compared(loaded, run_dir, tokenizer, dev)?;
    if let Some(table) = end_table::end_table(&results::read_summary(run_dir)?, &names) {
        print!("{table}");
    }
    meta.finished = Some(now());
    meta.complete = true;
    // Order of meta.stages follows the spec even after a resume.
    meta.stages
        .sort_by_key(|s| spec.stages.iter().position(|x| x.name == s.name));
    write_meta(run_dir, &meta)?;
    if let Err(e) = crate::report::write_run_report(run_dir) {
        eprintln!("warning: the report could not be written: {e:#}");
    }
    Ok(())
}

/// The machine's fp32 peak for the MFU column, from `GPTLAB_PEAK_GFLOPS` (0 = unknown).
fn peak_flops() -> f64 {
    std::env::var("GPTLAB_PEAK_GFLOPS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        * 1e9
}

/// `meta.json` at the start of a run (or of a resumed one): not complete, this machine.
fn start_meta(loaded: &LoadedSpec, run_dir: &Path) -> Result<RunMeta> {
    let spec = &loaded.spec;
    let mut meta = read_meta(run_dir).unwrap_or_else(|| RunMeta {
        name: spec.name.clone(),
        run_id: loaded.run_id.clone(),
        started: now(),
        ..Default::default()
    });
    meta.complete = false;
    meta.finished = None;
    meta.git_rev = git_rev();
    meta.host = host();
    meta.device = format!("{:?}", spec.device).to_lowercase();
    write_meta(run_dir, &meta)?;
    Ok(meta)
}

/// The compiled model shape for the spec's preset and the trained tokenizer.
fn model_config_for(loaded: &LoadedSpec, tokenizer: &Tokenizer) -> Result<ModelConfig> {
    let spec = &loaded.spec;
    let preset = spec.model.preset.context("[model] preset is missing")?;
    let cfg = model_config(preset.as_str(), tokenizer.vocab_size())
        .with_context(|| format!("{}: [tokenizer] vocab_size", loaded.path.display()))?;
    if spec.model.block_size > cfg.n_ctx {
        bail!(
            "{}: model.block_size {} exceeds the context {} of preset `{}`",
            loaded.path.display(),
            spec.model.block_size,
            cfg.n_ctx,
            cfg.preset
        );
    }
    Ok(cfg)
}

/// Builds or loads the stage's starting model and trains it; returns its record.
fn train_stage<D: Backend>(
    env: &StageEnv<D>,
    cfg: &ModelConfig,
    data: &StageData,
    meta: &mut RunMeta,
) -> Result<StageMeta> {
    let (spec, stage) = (env.spec, env.stage);
    let mut model: Box<dyn LanguageModel<D>> = match &stage.from {
        None => build_model(cfg, &env.dev, spec.seed)?,
        Some(from) => load_model(&env.run_dir.join(from), &env.dev)
            .with_context(|| format!("stage `{}` starts from `{from}`", stage.name))?,
    };
    let kind = stage.method.kind();
    if kind == StageKind::Reward && !model.has_score_head() {
        model.add_score_head(spec.seed);
    }
    let count = |model: &mut dyn LanguageModel<D>| -> Result<usize> {
        Ok(model_tensors(model)?.iter().map(|(_, _, v)| v.len()).sum())
    };
    let params = count(model.as_mut())?;
    meta.params = meta.params.max(params);
    crate::stages::adapters::adapt_for_stage(env, model.as_mut(), spec.seed)?;
    model.set_checkpointing(stage.gradient_checkpointing);
    let mut trained = match model.lora() {
        Some(_) => format!(" (LoRA: {} trained)", count(model.as_mut())?),
        None => String::new(),
    };
    if stage.gradient_checkpointing {
        trained.push_str(", gradient checkpointing");
    }
    println!(
        "[{}] {} stage, {} parameters{trained}, preset {} (vocab {}), {} steps",
        stage.name,
        kind.as_str(),
        params,
        cfg.preset,
        cfg.vocab_size,
        stage.steps
    );
    let (result, sources) = run_stage(env, model.as_mut(), data, params)?;
    Ok(StageMeta {
        name: stage.name.clone(),
        kind: Some(kind),
        steps: stage.steps,
        tokens: result.tokens,
        wall_s: result.wall_s,
        tok_per_sec: result.tokens as f64 / result.wall_s.max(1e-9),
        sources,
        ..Default::default()
    })
}

/// Whether `stage` reads ratings of a feedback stage of the run (`@stage/file` data).
fn reads_ratings(stage: &Stage) -> bool {
    let paths = stage.data_paths();
    paths
        .iter()
        .chain(&stage.val_data)
        .any(|p| rating_path(p).is_some())
}

/// `stage` with each `@name/file` path pointing into this run's folder.
fn with_ratings_from(stage: &Stage, run_dir: &Path) -> Stage {
    let local = |p: &mut PathBuf| {
        if let Some(path) = rating_path(p).map(|(name, file)| run_dir.join(name).join(file)) {
            *p = path;
        }
    };
    let mut stage = stage.clone();
    stage
        .edit(|keys| {
            keys.data.iter_mut().for_each(|e| local(&mut e.path));
            keys.val_data.iter_mut().for_each(local);
        })
        .expect("only paths changed");
    stage
}

/// A feedback stage: ratings instead of training; its record counts generated tokens.
fn rate_stage<D: Backend>(env: &StageEnv<D>, data: &StageData) -> Result<StageMeta> {
    let s = crate::stages::run_feedback_stage(env, data)?;
    Ok(StageMeta {
        name: env.stage.name.clone(),
        kind: Some(StageKind::Feedback),
        steps: 0,
        tokens: s.tokens,
        wall_s: s.wall_s,
        tok_per_sec: s.tokens as f64 / s.wall_s.max(1e-9),
        ..Default::default()
    })
}

fn tokenizer_for(
    loaded: &LoadedSpec,
    run_dir: &Path,
    datas: &[Option<StageData>],
) -> Result<Tokenizer> {
    let path = run_dir.join(results::TOKENIZER_FILE);
    if path.exists() {
        return Tokenizer::load(&path);
    }
    if let Some(dir) = crate::spec::pretrained::pretrained_base(&loaded.spec) {
        let tok = pretrained::tokenizer(dir)?;
        tok.save(&path)?;
        return Ok(tok);
    }
    let texts: Vec<&str> = datas.iter().flatten().flat_map(|d| d.texts()).collect();
    let spec = loaded
        .spec
        .tokenizer
        .as_ref()
        .context("[tokenizer] is missing")?;
    let kind = match spec.kind {
        crate::spec::TokenizerKindSpec::Char => TokenizerKind::Char,
        crate::spec::TokenizerKindSpec::Bpe => TokenizerKind::Bpe,
    };
    let tok = Tokenizer::train(kind, &texts, spec.vocab_size)?;
    tok.save(&path)?;
    Ok(tok)
}

fn write_samples_and_probes<D: Backend>(
    loaded: &LoadedSpec,
    run_dir: &Path,
    tok: &Tokenizer,
    dev: &D,
) -> Result<()> {
    let spec = &loaded.spec;
    let r = &spec.report;
    let opts = SampleSettings::from(&r.sampling).into();
    let (mut samples, mut probes) = (String::new(), String::new());
    for name in &r.compare {
        let Some(stage) = spec.stages.iter().find(|s| &s.name == name) else {
            continue;
        };
        let model = load_model(&run_dir.join(name), dev)?;
        let chat = is_chat(Some(stage.method.kind()));
        // Each prompt has its own stream, drawn in order from the report's seed.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(r.sampling.seed);
        let prompts: Vec<Prompt> = r
            .prompts
            .iter()
            .map(|p| Prompt::turns(&p.turns(), chat))
            .collect();
        let seeds: Vec<u64> = prompts.iter().map(|_| rng.gen()).collect();
        let answers = Ask::new(model.as_ref(), tok).texts(&prompts, &opts, &seeds);
        for (p, completion) in r.prompts.iter().zip(answers) {
            let turns = p.turns();
            samples += &serde_json::to_string(&SampleLine {
                stage: name.clone(),
                prompt: p.key(),
                completion,
                turns: if turns.len() > 1 { turns } else { Vec::new() },
            })?;
            samples.push('\n');
        }
        for probe in &r.probes {
            let ids = Prompt::user(&probe.prompt, chat).build(tok).ids;
            let top = top_tokens(model.as_ref(), tok, &ids, 10);
            let candidates = probe
                .candidates
                .iter()
                .map(|c| CandidateProb {
                    text: c.clone(),
                    prob: continuation_prob(model.as_ref(), &ids, &tok.encode(c), tok.vocab_size()),
                })
                .collect();
            probes += &serde_json::to_string(&ProbeLine {
                stage: name.clone(),
                prompt: probe.prompt.clone(),
                top,
                candidates,
            })?;
            probes.push('\n');
        }
    }
    write_atomic(&run_dir.join(results::SAMPLES_FILE), samples.as_bytes())?;
    write_atomic(&run_dir.join(results::PROBES_FILE), probes.as_bytes())
}
