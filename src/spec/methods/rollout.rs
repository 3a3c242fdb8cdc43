//! What PPO and GRPO share with a feedback stage: answers sampled to a file of prompts. The
//! sampling keys themselves are `FlatStage`'s (`x-stages`), read through each view.

use std::path::Path;

use crate::spec::flat::{FlatProblem, FlatStage};

/// A stage that samples answers to `prompts`.
pub trait Rollout: std::ops::Deref<Target = FlatStage> {
    /// The prompts file: present in every view, since `require_prompts` made it.
    fn prompts_file(&self) -> &Path {
        self.prompts
            .as_deref()
            .expect("a sampling stage's view is made only with its prompts")
    }
}

/// Refuses a sampling stage without `prompts`, telling it `message`.
pub fn require_prompts(
    flat: &FlatStage,
    message: impl FnOnce() -> String,
) -> Result<(), FlatProblem> {
    match flat.prompts {
        Some(_) => Ok(()),
        None => Err(FlatProblem {
            key: "prompts",
            message: message(),
        }),
    }
}

/// What PPO and GRPO without `prompts` are told.
pub fn sample_prompts_needed(method: &str) -> String {
    format!("{method} needs `prompts`: a JSONL file of prompts to sample completions for")
}
