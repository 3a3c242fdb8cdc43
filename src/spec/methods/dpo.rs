//! DPO on preference pairs (Rafailov et al. 2023), with TRL's `rpo_alpha`.

use super::RlhfSpec;
use crate::spec::flat::{FlatProblem, FlatStage};

#[derive(Debug, Clone, PartialEq)]
pub struct DpoKeys {
    /// Strength of the implicit KL constraint to the reference model.
    pub beta: f64,
    /// Weight of the chosen answers' per-token negative log-likelihood added to the DPO loss
    /// (TRL's `rpo_alpha`, Pang et al. 2024): DPO alone may lower both answers' likelihood
    /// as long as their margin grows, and greedy answers then get worse. 0 is plain DPO.
    pub rpo_alpha: f64,
}

impl RlhfSpec for DpoKeys {
    fn read(flat: &FlatStage) -> Result<Self, FlatProblem> {
        Ok(DpoKeys {
            beta: flat.beta,
            rpo_alpha: flat.rpo_alpha,
        })
    }

    fn write(&self, flat: &mut FlatStage) {
        (flat.beta, flat.rpo_alpha) = (self.beta, self.rpo_alpha);
    }

    fn missing_data(&self) -> Option<&'static str> {
        Some("dpo needs `data`: preference pairs {\"prompt\",\"chosen\",\"rejected\"}")
    }
}
