//! The words that name what a stage does: its kind, an rlhf stage's algorithm, and GRPO's
//! answer checker. Both the experiment file (`schema.rs`) and a stage (`stage.rs`) use them,
//! so they sit below both.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Pretrain,
    Sft,
    Reward,
    Rlhf,
    /// Simulated raters: answers of `from` rated by a judge, written as rating files.
    Feedback,
}

impl StageKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            StageKind::Pretrain => "pretrain",
            StageKind::Sft => "sft",
            StageKind::Reward => "reward",
            StageKind::Rlhf => "rlhf",
            StageKind::Feedback => "feedback",
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Ppo,
    Dpo,
    Grpo,
    Kto,
}

impl Algorithm {
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::Ppo => "ppo",
            Algorithm::Dpo => "dpo",
            Algorithm::Grpo => "grpo",
            Algorithm::Kto => "kto",
        }
    }
}

/// How GRPO scores a completion when no reward model is given.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Checker {
    #[default]
    Exact,
    Contains,
    /// Partial credit: character-overlap F1 with the reference (`eval::overlap::char_f1`).
    #[serde(rename = "char_f1")]
    CharF1,
}
