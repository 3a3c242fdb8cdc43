//! A trained stage folder opened for asking: its model, the run's tokenizer beside it, and
//! its kind from `done.json`, typed.

use super::ask::Ask;
use crate::model::{Backend, LanguageModel};
use crate::results::weights::load_model;
use crate::results::{read_stage_record, run_of_stage, TOKENIZER_FILE};
use crate::spec::StageKind;
use crate::tokenizer::Tokenizer;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub struct Stage<D: Backend> {
    pub model: Box<dyn LanguageModel<D>>,
    pub tokenizer: Tokenizer,
    pub tokenizer_path: PathBuf,
    /// None for a folder without a readable `done.json` (an unfinished or foreign stage).
    pub kind: Option<StageKind>,
}

impl<D: Backend> Stage<D> {
    pub fn is_chat(&self) -> bool {
        is_chat(self.kind)
    }

    /// Asked as its kind is: through the chat template or as a completer.
    pub fn ask(&self) -> Ask<'_, D> {
        Ask::new(self.model.as_ref(), &self.tokenizer)
    }
}

/// Chat stages (SFT, reward, RLHF: everything trained on conversations) answer through the
/// chat template; a base model, or a stage of unknown kind, continues text.
pub fn is_chat(kind: Option<StageKind>) -> bool {
    matches!(
        kind,
        Some(StageKind::Sft | StageKind::Reward | StageKind::Rlhf)
    )
}

pub fn open_stage<D: Backend>(dir: &Path, dev: &D) -> Result<Stage<D>> {
    let model = load_model(dir, dev)
        .with_context(|| format!("{} is not a gptlab stage folder", dir.display()))?;
    let tokenizer_path = run_of_stage(dir).join(TOKENIZER_FILE);
    let tokenizer = Tokenizer::load(&tokenizer_path)
        .with_context(|| format!("the tokenizer of stage {}", dir.display()))?;
    let kind = read_stage_record(dir).ok().and_then(|m| m.kind);
    Ok(Stage {
        model,
        tokenizer,
        tokenizer_path,
        kind,
    })
}
