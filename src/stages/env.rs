//! What the runner hands a stage, below the stages that read it and the dispatch in `mod.rs`
//! that builds their objectives.

use crate::model::Backend;
use crate::spec::{Experiment, Stage};
use crate::tokenizer::Tokenizer;
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
