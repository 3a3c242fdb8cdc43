//! PPO against a reward model with a KL penalty to the starting model (InstructGPT).

use super::rollout::RolloutKeys;
use super::RlhfSpec;
use crate::spec::flat::{FlatProblem, FlatStage};

#[derive(Debug, Clone, PartialEq)]
pub struct PpoKeys {
    pub rollout: RolloutKeys,
    /// An earlier stage of kind `reward`.
    pub reward_model: String,
    pub vf_coef: f64,
    pub gamma: f64,
    pub lam: f64,
}

impl RlhfSpec for PpoKeys {
    fn read(flat: &FlatStage) -> Result<Self, FlatProblem> {
        Ok(PpoKeys {
            rollout: RolloutKeys::read(flat, "ppo")?,
            reward_model: flat.reward_model.clone().ok_or_else(|| FlatProblem {
                key: "reward_model",
                message: "ppo needs `reward_model`: the name of an earlier stage of kind `reward`"
                    .into(),
            })?,
            vf_coef: flat.vf_coef,
            gamma: flat.gamma,
            lam: flat.lam,
        })
    }

    fn write(&self, flat: &mut FlatStage) {
        self.rollout.write(flat);
        flat.reward_model = Some(self.reward_model.clone());
        (flat.vf_coef, flat.gamma, flat.lam) = (self.vf_coef, self.gamma, self.lam);
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
        Some(&self.reward_model)
    }
}
