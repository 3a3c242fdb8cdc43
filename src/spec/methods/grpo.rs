//! GRPO: answers to a prompt sampled as a group and scored against each other, by a reward
//! model or by `checker` against the prompt's reference (verifiable rewards).

use super::rollout::RolloutKeys;
use super::RlhfSpec;
use crate::spec::flat::{FlatProblem, FlatStage};
use crate::spec::kinds::Checker;
use crate::spec::problem::{require, Problem};

#[derive(Debug, Clone, PartialEq)]
pub struct GrpoKeys {
    pub rollout: RolloutKeys,
    /// Scores the completions when given; otherwise `checker` compares them with references.
    pub reward_model: Option<String>,
    pub group_size: usize,
    pub checker: Checker,
}

impl RlhfSpec for GrpoKeys {
    fn read(flat: &FlatStage) -> Result<Self, FlatProblem> {
        Ok(GrpoKeys {
            rollout: RolloutKeys::read(flat, "grpo")?,
            reward_model: flat.reward_model.clone(),
            group_size: flat.group_size,
            checker: flat.checker,
        })
    }

    fn write(&self, flat: &mut FlatStage) {
        self.rollout.write(flat);
        flat.reward_model = self.reward_model.clone();
        (flat.group_size, flat.checker) = (self.group_size, self.checker);
    }

    fn check(&self, at: &dyn Fn(&str) -> String) -> Result<(), Problem> {
        // A method rule beside the sampling ones: greedy answers to a prompt are all the same.
        require(self.rollout.temperature > 0.0, at("temperature"), || {
            format!(
                "GRPO compares the answers within a group, and at temperature 0 (greedy) they are \
                 all the same, so every advantage is 0 and nothing is learned: expected a number \
                 > 0, found {}",
                self.rollout.temperature
            )
        })
    }

    fn missing_data(&self) -> Option<&'static str> {
        None
    }

    fn rollout(&self) -> Option<&RolloutKeys> {
        Some(&self.rollout)
    }

    fn rollout_mut(&mut self) -> Option<&mut RolloutKeys> {
        Some(&mut self.rollout)
    }

    fn reward_model(&self) -> Option<&str> {
        self.reward_model.as_deref()
    }
}
