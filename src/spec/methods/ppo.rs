//! PPO against a reward model with a KL penalty to the starting model (InstructGPT).

use super::rollout::{require_prompts, sample_prompts_needed, Rollout};
use super::{keys_view, RlhfSpec};
use crate::spec::flat::{FlatProblem, FlatStage};

keys_view!(PpoKeys);

impl Rollout for PpoKeys {}

impl RlhfSpec for PpoKeys {
    fn of(flat: FlatStage) -> Result<Self, FlatProblem> {
        require_prompts(&flat, || sample_prompts_needed("ppo"))?;
        if flat.reward_model.is_none() {
            return Err(FlatProblem {
                key: "reward_model",
                message: "ppo needs `reward_model`: the name of an earlier stage of kind `reward`"
                    .into(),
            });
        }
        Ok(PpoKeys(flat))
    }

    fn missing_data(&self) -> Option<&'static str> {
        None
    }

    fn reward_model(&self) -> Option<&str> {
        self.0.reward_model.as_deref()
    }
}

impl PpoKeys {
    /// The reward stage that scores the answers: present in every view, since `of` made it.
    pub fn reward_stage(&self) -> &str {
        self.0.reward_model.as_deref().expect("checked by `of`")
    }
}
