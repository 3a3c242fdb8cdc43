//! KTO (Ethayarajh et al. 2024, TRL's `KTOTrainer`): single answers marked 👍 or 👎, each
//! pushed above or below a KL estimate of how far the policy has moved from the reference.

use super::{keys_view, RlhfSpec};
use crate::spec::flat::{FlatProblem, FlatStage};

keys_view!(
    /// KTO's keys: the KL strength as in DPO, and a weight for each side's loss. With
    /// unbalanced feedback the paper (and TRL) advise keeping the weighted counts of 👍 over
    /// 👎 within [1, 4/3].
    KtoKeys
);

impl RlhfSpec for KtoKeys {
    fn of(flat: FlatStage) -> Result<Self, FlatProblem> {
        Ok(KtoKeys(flat))
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
        let Method::Rlhf(RlhfKeys::Kto(keys)) = &stage.method else {
            panic!("a kto stage: {:?}", stage.method);
        };
        assert_eq!((keys.beta, keys.desirable_weight), (0.1, 1.0));
        assert_eq!(keys.undesirable_weight, 1.5);
        let text = toml::to_string(&FlatStage::from(stage)).unwrap();
        assert!(text.contains("undesirable_weight = 1.5"), "{text}");
        assert!(!text.contains("\ndesirable_weight"), "{text}");
        // Other methods never write them: their resolved specs, and run ids, are as before.
        let dpo = written(Algorithm::Dpo).into_stage().unwrap();
        let text = toml::to_string(&FlatStage::from(dpo)).unwrap();
        assert!(!text.contains("desirable_weight"), "{text}");
    }
}
