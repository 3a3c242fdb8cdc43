//! KTO (Ethayarajh et al. 2024, TRL's `KTOTrainer`): single answers marked 👍 or 👎, each
//! pushed above or below a KL estimate of how far the policy has moved from the reference.

use super::RlhfSpec;
use crate::spec::flat::{FlatProblem, FlatStage};

#[derive(Debug, Clone, PartialEq)]
pub struct KtoKeys {
    /// Strength of the implicit KL constraint to the reference model, as in DPO.
    pub beta: f64,
    /// Weights of the 👍 and 👎 examples' losses. With unbalanced feedback the paper (and TRL)
    /// advise keeping `desirable_weight·#👍 / (undesirable_weight·#👎)` within [1, 4/3].
    /// Both default to 1, and the flat form writes them only when not 1 (`FlatStage`).
    pub desirable_weight: f64,
    pub undesirable_weight: f64,
}

impl RlhfSpec for KtoKeys {
    fn read(flat: &FlatStage) -> Result<Self, FlatProblem> {
        Ok(KtoKeys {
            beta: flat.beta,
            desirable_weight: flat.desirable_weight,
            undesirable_weight: flat.undesirable_weight,
        })
    }

    fn write(&self, flat: &mut FlatStage) {
        flat.beta = self.beta;
        flat.desirable_weight = self.desirable_weight;
        flat.undesirable_weight = self.undesirable_weight;
    }

    fn missing_data(&self) -> Option<&'static str> {
        Some("kto needs `data`: labelled answers {\"prompt\",\"completion\",\"label\"} (or preference pairs, each read as one 👍 and one 👎)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::data_entry::DataEntry;
    use crate::spec::kinds::StageKind;
    use crate::spec::methods::{Algorithm, RlhfKeys};
    use crate::spec::stage::Method;

    fn written(algorithm: Algorithm) -> FlatStage {
        let mut flat = FlatStage::new("s", StageKind::Rlhf);
        flat.algorithm = Some(algorithm);
        flat.data = vec![DataEntry::plain("d.jsonl")];
        flat.min_lr = Some(flat.lr / 10.0);
        flat
    }

    #[test]
    fn weights_are_written_only_when_set() {
        let mut flat = written(Algorithm::Kto);
        flat.undesirable_weight = 1.5;
        let stage = flat.into_stage().unwrap();
        let expected = KtoKeys {
            beta: 0.1,
            desirable_weight: 1.0,
            undesirable_weight: 1.5,
        };
        assert_eq!(stage.method, Method::Rlhf(RlhfKeys::Kto(expected)));
        let text = toml::to_string(&FlatStage::from(stage)).unwrap();
        assert!(text.contains("undesirable_weight = 1.5"), "{text}");
        assert!(!text.contains("\ndesirable_weight"), "{text}");
        // Other methods never write them: their resolved specs, and run ids, are as before.
        let dpo = written(Algorithm::Dpo).into_stage().unwrap();
        let text = toml::to_string(&FlatStage::from(dpo)).unwrap();
        assert!(!text.contains("desirable_weight"), "{text}");
    }
}
