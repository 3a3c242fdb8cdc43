//! What the runner hands a stage, and what a stage hands back to the training loop (its
//! objective and how much of each data source it draws), below the stages that read it and
//! the dispatch in `mod.rs` that builds their objectives.

use crate::data::mixture::SourceSize;
use crate::model::{Backend, LanguageModel};
use crate::results::meta::SourceUsage;
use crate::results::weights::load_model;
use crate::spec::{Experiment, Stage};
use crate::tokenizer::Tokenizer;
use crate::train::trainer::Objective;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// What the runner hands a stage.
pub struct StageEnv<'a, D: Backend> {
    pub spec: &'a Experiment,
    pub stage: &'a Stage,
    pub tokenizer: &'a Tokenizer,
    pub dev: D,
    pub dir: PathBuf,
    /// The run folder, where other stages' checkpoints live.
    pub run_dir: PathBuf,
    pub block_size: usize,
    pub peak_flops: f64,
}

/// A stage's objective on its data, and for weighted data how much each source supplies.
pub type Built<'a, D> = (Box<dyn Objective<D> + 'a>, Vec<SourceUsage>);

/// Records drawn per source of a weighted record stage: `steps x batch x grad_accum`.
pub fn record_usage(stage: &Stage, sources: &[SourceSize]) -> Vec<SourceUsage> {
    let drawn = (stage.steps as usize * stage.batch_size * stage.grad_accum) as f64;
    sources
        .iter()
        .map(|s| SourceUsage {
            name: s.name.clone(),
            share: s.share,
            size: s.size as u64,
            unit: "records".into(),
            passes: drawn * s.share / s.size.max(1) as f64,
        })
        .collect()
}

/// The stage's `reward_model`: the finished model of that earlier stage of the run.
pub fn load_reward_model<D: Backend>(
    env: &StageEnv<D>,
    name: &str,
) -> Result<Box<dyn LanguageModel<D>>> {
    load_model(&env.run_dir.join(name), &env.dev).with_context(|| format!("reward model `{name}`"))
}
