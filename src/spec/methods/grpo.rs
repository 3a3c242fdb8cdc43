//! GRPO: answers to a prompt sampled as a group and scored against each other, by a reward
//! model or by `checker` against the prompt's reference (verifiable rewards).

use super::rollout::{require_prompts, sample_prompts_needed, Rollout};
use super::{keys_view, RlhfSpec};
use crate::spec::flat::{FlatProblem, FlatStage};
use crate::spec::problem::{require, Problem};

keys_view!(
    /// GRPO's keys: scored by a reward model when one is named, else by the checker against
    /// each prompt's reference.
    GrpoKeys
);

impl Rollout for GrpoKeys {}

impl RlhfSpec for GrpoKeys {
    fn of(flat: FlatStage) -> Result<Self, FlatProblem> {
        require_prompts(&flat, || sample_prompts_needed("grpo"))?;
        Ok(GrpoKeys(flat))
    }

    fn check(&self, at: &dyn Fn(&str) -> String) -> Result<(), Problem> {
        // A method rule beside the sampling ones: greedy answers to a prompt are all the same.
        require(self.temperature > 0.0, at("temperature"), || {
            format!(
                "GRPO compares the answers within a group, and at temperature 0 (greedy) they are \
                 all the same, so every advantage is 0 and nothing is learned: expected a number \
                 > 0, found {}",
                self.temperature
            )
        })
    }

    fn missing_data(&self) -> Option<&'static str> {
        None
    }

    fn reward_model(&self) -> Option<&str> {
        self.0.reward_model.as_deref()
    }
}
