//! A trained stage folder as export and `gptlab logits` need it: the model, the run's
//! tokenizer beside the stage, and the stage kind from its `done.json`.

use crate::model::LanguageModel;
use crate::runner::StageMeta;
use crate::stages::stage_done_marker;
use crate::tokenizer::Tokenizer;
use crate::train::checkpoint::load_model;
use anyhow::{Context, Result};
use dfdx::tensor::Cpu;
use std::path::{Path, PathBuf};

pub const TOKENIZER_FILE: &str = "tokenizer.json";

pub struct Stage {
    pub model: Box<dyn LanguageModel<Cpu>>,
    pub tokenizer: Tokenizer,
    pub tokenizer_path: PathBuf,
    /// `pretrain`, `sft`, `reward`, `rlhf`; None for a folder without `done.json`.
    pub kind: Option<String>,
}

impl Stage {
    /// Chat models (every stage but pretrain) answer through the chat template.
    pub fn is_chat(&self) -> bool {
        self.kind.as_deref().is_some_and(|k| k != "pretrain")
    }
}

/// The folder a stage's tokenizer lives in: the run folder holding the stage.
pub fn run_folder(stage: &Path) -> PathBuf {
    match stage.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn open_stage(dir: &Path) -> Result<Stage> {
    let model = load_model(dir, &Cpu::default())
        .with_context(|| format!("{} is not a gptlab stage folder", dir.display()))?;
    let tokenizer_path = run_folder(dir).join(TOKENIZER_FILE);
    let tokenizer = Tokenizer::load(&tokenizer_path)
        .with_context(|| format!("the tokenizer of stage {}", dir.display()))?;
    let kind = std::fs::read_to_string(stage_done_marker(dir))
        .ok()
        .and_then(|t| serde_json::from_str::<StageMeta>(&t).ok())
        .map(|m| m.kind);
    Ok(Stage {
        model,
        tokenizer,
        tokenizer_path,
        kind,
    })
}
