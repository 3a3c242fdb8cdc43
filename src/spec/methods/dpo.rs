//! DPO on preference pairs (Rafailov et al. 2023), with TRL's RPO term (Pang et al. 2024):
//! the chosen answers' per-token NLL joins the loss, since DPO alone may lower both answers'
//! likelihood as long as their margin grows, and greedy answers then get worse.

use super::{keys_view, RlhfSpec};
use crate::spec::flat::{FlatProblem, FlatStage};

keys_view!(DpoKeys);

impl RlhfSpec for DpoKeys {
    fn of(flat: FlatStage) -> Result<Self, FlatProblem> {
        Ok(DpoKeys(flat))
    }

    fn missing_data(&self) -> Option<&'static str> {
        Some("dpo needs `data`: preference pairs {\"prompt\",\"chosen\",\"rejected\"}")
    }
}
