//! Runs an experiment: results folder and run id, tokenizer, each stage in order (skipping
//! finished ones, resuming interrupted ones), then samples, probes, summary and report.

mod report_eval;

use crate::data::chat::{encode_prompt, Message, Role};
use crate::eval::answers::{answer, complete};
use crate::eval::probe::{continuation_prob, top_tokens, CandidateProb, TokenProb};
use crate::model::presets::{build_model, model_config};
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::spec::{load_spec, Device, LoadOptions, LoadedSpec, StageKind};
use crate::stages::{load_stage_data, run_stage, stage_done_marker, StageData, StageEnv};
use crate::tokenizer::{Tokenizer, TokenizerKind};
use crate::train::checkpoint::{load_model, model_tensors};
use crate::util::{write_atomic, write_json_atomic};
use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub results_root: PathBuf,
    pub load: LoadOptions,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StageMeta {
    pub name: String,
    pub kind: String,
    pub steps: u64,
    pub tokens: u64,
    pub wall_s: f64,
    pub tok_per_sec: f64,
}

/// `meta.json`: what ran, where, and whether it finished.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunMeta {
    pub name: String,
    pub run_id: String,
    pub started: String,
    pub finished: Option<String>,
    pub complete: bool,
    pub git_rev: String,
    pub host: String,
    pub device: String,
    pub preset: String,
    pub params: usize,
    pub vocab_size: usize,
    pub block_size: usize,
    pub stages: Vec<StageMeta>,
}

pub fn run_dir_for(loaded: &LoadedSpec, results_root: &Path) -> PathBuf {
    results_root.join(&loaded.spec.name).join(&loaded.run_id)
}

pub fn read_meta(run_dir: &Path) -> Option<RunMeta> {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("meta.json")).ok()?).ok()
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
    match loaded.spec.device {
        Device::Cpu => run_on(&loaded, &run_dir, dfdx::tensor::Cpu::seed_from_u64(loaded.spec.seed)),
        #[cfg(feature = "cuda")]
        Device::Cuda => run_on(&loaded, &run_dir, dfdx::tensor::Cuda::seed_from_u64(loaded.spec.seed)),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda => bail!(
            "{}: device = \"cuda\" needs a build with CUDA support: cargo build --release --features cuda",
            loaded.path.display()
        ),
    }?;
    Ok(run_dir)
}

fn run_on<D: Backend>(loaded: &LoadedSpec, run_dir: &Path, dev: D) -> Result<()> {
    let spec = &loaded.spec;
    // All data first: errors in any stage's files surface before hours of training, and
    // before a run folder exists that could be mistaken for a run.
    let datas: Vec<StageData> = spec
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            load_stage_data(s, spec.seed, &|key| {
                loaded.locate(&format!("stages[{i}].{key}"))
            })
        })
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create the results folder {}", run_dir.display()))?;
    write_atomic(&run_dir.join("spec.toml"), loaded.resolved_toml.as_bytes())?;
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
    write_json_atomic(&run_dir.join("meta.json"), &meta)?;

    let tokenizer = tokenizer_for(loaded, run_dir, &datas)?;
    let cfg = model_config(spec.model.preset.as_str(), tokenizer.vocab_size())
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
    meta.preset = cfg.preset.clone();
    meta.vocab_size = tokenizer.vocab_size();
    meta.block_size = spec.model.block_size;

    let peak_flops = std::env::var("GPTLAB_PEAK_GFLOPS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        * 1e9;
    for (stage, data) in spec.stages.iter().zip(&datas) {
        let dir = run_dir.join(&stage.name);
        if stage_done_marker(&dir).exists() {
            println!("[{}] already trained, skipping", stage.name);
            // A kill between writing done.json and meta.json leaves meta without the stage.
            if !meta.stages.iter().any(|s| s.name == stage.name) {
                let done = stage_done_marker(&dir);
                let text = std::fs::read_to_string(&done)
                    .with_context(|| format!("cannot read {}", done.display()))?;
                let sm: StageMeta = serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a stage record", done.display()))?;
                meta.stages.push(sm);
            }
            continue;
        }
        let mut model: Box<dyn LanguageModel<D>> = match &stage.from {
            None => build_model(&cfg, &dev, spec.seed)?,
            Some(from) => load_model(&run_dir.join(from), &dev)
                .with_context(|| format!("stage `{}` starts from `{from}`", stage.name))?,
        };
        if stage.kind == StageKind::Reward && !model.has_score_head() {
            model.add_score_head(spec.seed);
        }
        let params = model_tensors(model.as_mut())?
            .iter()
            .map(|(_, _, v)| v.len())
            .sum();
        meta.params = meta.params.max(params);
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
        println!(
            "[{}] {} stage, {} parameters, preset {} (vocab {}), {} steps",
            stage.name,
            stage.kind.as_str(),
            params,
            cfg.preset,
            cfg.vocab_size,
            stage.steps
        );
        let result = run_stage(&env, model.as_mut(), data, params)?;
        let sm = StageMeta {
            name: stage.name.clone(),
            kind: stage.kind.as_str().into(),
            steps: stage.steps,
            tokens: result.tokens,
            wall_s: result.wall_s,
            tok_per_sec: result.tokens as f64 / result.wall_s.max(1e-9),
        };
        meta.stages.retain(|s| s.name != stage.name);
        meta.stages.push(sm.clone());
        write_json_atomic(&stage_done_marker(&dir), &sm)?;
        write_json_atomic(&run_dir.join("meta.json"), &meta)?;
        println!(
            "[{}] done: {} tokens in {:.1}s ({:.0} tok/s)",
            stage.name, sm.tokens, sm.wall_s, sm.tok_per_sec
        );
    }

    write_samples_and_probes(loaded, run_dir, &tokenizer, &dev)?;
    write_summary(
        run_dir,
        &spec
            .stages
            .iter()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>(),
    )?;
    report_eval::evaluate_compared(loaded, run_dir, &tokenizer, &dev)?;
    meta.finished = Some(now());
    meta.complete = true;
    // Order of meta.stages follows the spec even after a resume.
    meta.stages
        .sort_by_key(|s| spec.stages.iter().position(|x| x.name == s.name));
    write_json_atomic(&run_dir.join("meta.json"), &meta)?;
    if let Err(e) = crate::report::write_run_report(run_dir) {
        eprintln!("warning: the report could not be written: {e:#}");
    }
    Ok(())
}

fn tokenizer_for(loaded: &LoadedSpec, run_dir: &Path, datas: &[StageData]) -> Result<Tokenizer> {
    let path = run_dir.join("tokenizer.json");
    if path.exists() {
        return Tokenizer::load(&path);
    }
    let texts: Vec<&str> = datas.iter().flat_map(|d| d.texts()).collect();
    let kind = match loaded.spec.tokenizer.kind {
        crate::spec::TokenizerKindSpec::Char => TokenizerKind::Char,
        crate::spec::TokenizerKindSpec::Bpe => TokenizerKind::Bpe,
    };
    let tok = Tokenizer::train(kind, &texts, loaded.spec.tokenizer.vocab_size)?;
    tok.save(&path)?;
    Ok(tok)
}

#[derive(Serialize, Deserialize)]
pub struct SampleLine {
    pub stage: String,
    pub prompt: String,
    pub completion: String,
}

#[derive(Serialize, Deserialize)]
pub struct ProbeLine {
    pub stage: String,
    pub prompt: String,
    pub top: Vec<TokenProb>,
    pub candidates: Vec<CandidateProb>,
}

/// Chat stages are asked through the template; a base model simply continues the text.
pub fn is_chat_stage(kind: StageKind) -> bool {
    kind != StageKind::Pretrain
}

pub fn prompt_ids(tok: &Tokenizer, text: &str, chat: bool) -> Vec<u32> {
    if chat {
        encode_prompt(
            tok,
            &[Message {
                role: Role::User,
                content: text.to_string(),
            }],
        )
    } else {
        tok.encode(text)
    }
}

fn write_samples_and_probes<D: Backend>(
    loaded: &LoadedSpec,
    run_dir: &Path,
    tok: &Tokenizer,
    dev: &D,
) -> Result<()> {
    let spec = &loaded.spec;
    let r = &spec.report;
    let opts = SampleOptions {
        max_new_tokens: r.sampling.max_new_tokens,
        temperature: r.sampling.temperature as f32,
        top_k: r.sampling.top_k,
        top_p: r.sampling.top_p as f32,
        stop: vec![],
        use_cache: true,
    };
    let (mut samples, mut probes) = (String::new(), String::new());
    for name in &r.compare {
        let Some(stage) = spec.stages.iter().find(|s| &s.name == name) else {
            continue;
        };
        let model = load_model(&run_dir.join(name), dev)?;
        let chat = is_chat_stage(stage.kind);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(r.sampling.seed);
        for p in &r.prompts {
            let user = Message {
                role: Role::User,
                content: p.clone(),
            };
            let completion = if chat {
                answer(model.as_ref(), tok, &[user], &opts, &mut rng)
            } else {
                complete(model.as_ref(), tok, p, &opts, &mut rng)
            };
            samples += &serde_json::to_string(&SampleLine {
                stage: name.clone(),
                prompt: p.clone(),
                completion,
            })?;
            samples.push('\n');
        }
        for probe in &r.probes {
            let ids = prompt_ids(tok, &probe.prompt, chat);
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
    write_atomic(&run_dir.join("samples.jsonl"), samples.as_bytes())?;
    write_atomic(&run_dir.join("probes.jsonl"), probes.as_bytes())
}

/// `summary.json`: the last value of every metric of every stage.
pub fn write_summary(run_dir: &Path, stages: &[String]) -> Result<()> {
    let mut summary: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for s in stages {
        let path = run_dir.join(s).join("metrics.csv");
        if let Ok(table) = crate::report::metrics::read_metrics_csv(&path) {
            let entry = summary.entry(s.clone()).or_default();
            for name in table.metric_names() {
                if let Some(v) = table.last(name) {
                    entry.insert(name.to_string(), v);
                }
            }
        }
    }
    write_json_atomic(&run_dir.join("summary.json"), &summary)
}
