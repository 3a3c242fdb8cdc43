//! A trained stage folder as export and `gptlab logits` need it: the model, the run's
//! tokenizer beside the stage, and the stage kind from its `done.json`.

use crate::model::LanguageModel;
use crate::results::{read_stage_record, run_of_stage, TOKENIZER_FILE};
use crate::tokenizer::Tokenizer;
use crate::train::checkpoint::load_model;
use anyhow::{Context, Result};
use dfdx::tensor::Cpu;
use std::path::{Path, PathBuf};

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

pub fn open_stage(dir: &Path) -> Result<Stage> {
    let model = load_model(dir, &Cpu::default())
        .with_context(|| format!("{} is not a gptlab stage folder", dir.display()))?;
    let tokenizer_path = run_of_stage(dir).join(TOKENIZER_FILE);
    let tokenizer = Tokenizer::load(&tokenizer_path)
        .with_context(|| format!("the tokenizer of stage {}", dir.display()))?;
    let kind = read_stage_record(dir).ok().map(|m| m.kind);
    Ok(Stage {
        model,
        tokenizer,
        tokenizer_path,
        kind,
    })
}
