//! What PPO and GRPO share: sampling answers to prompts and clipped policy updates on them,
//! held near the starting model by a KL penalty.

use std::path::PathBuf;

use crate::spec::flat::{FlatProblem, FlatStage};

#[derive(Debug, Clone, PartialEq)]
pub struct RolloutKeys {
    /// A JSONL file of prompts to sample completions for.
    pub prompts: PathBuf,
    pub rollout_batch: usize,
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub kl_coef: f64,
    pub ppo_epochs: usize,
    pub clip_range: f64,
}

impl RolloutKeys {
    /// From the flat form; `algorithm` names the method in the message when `prompts` is
    /// missing.
    pub fn read(flat: &FlatStage, algorithm: &str) -> Result<RolloutKeys, FlatProblem> {
        let prompts = flat.prompts.clone().ok_or_else(|| FlatProblem {
            key: "prompts",
            message: format!(
                "{algorithm} needs `prompts`: a JSONL file of prompts to sample completions for"
            ),
        })?;
        Ok(RolloutKeys {
            prompts,
            rollout_batch: flat.rollout_batch,
            max_new_tokens: flat.max_new_tokens,
            temperature: flat.temperature,
            kl_coef: flat.kl_coef,
            ppo_epochs: flat.ppo_epochs,
            clip_range: flat.clip_range,
        })
    }

    pub fn write(&self, flat: &mut FlatStage) {
        flat.prompts = Some(self.prompts.clone());
        flat.rollout_batch = self.rollout_batch;
        flat.max_new_tokens = self.max_new_tokens;
        flat.temperature = self.temperature;
        flat.kl_coef = self.kl_coef;
        flat.ppo_epochs = self.ppo_epochs;
        flat.clip_range = self.clip_range;
    }
}
