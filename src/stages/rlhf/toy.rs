//! The stage side of the test-only method of `spec/methods/toy.rs`: it reads preference
//! pairs as DPO does and trains nothing. The test loads a spec naming it and reads its data
//! through `load_stage_data`, as the runner does.

use super::{read_records, RlhfData, RlhfMethod};
use crate::model::{Backend, LanguageModel};
use crate::spec::methods::toy::ToyKeys;
use crate::stages::env::{Built, StageEnv};
use crate::stages::records::Split;
use anyhow::{bail, Result};

impl RlhfMethod for ToyKeys {
    fn load_data(&self, split: &Split) -> Result<RlhfData> {
        read_records(split, crate::data::read_preferences)
    }

    fn objective<'a, D: Backend>(
        &'a self,
        _env: &'a StageEnv<D>,
        _model: &mut dyn LanguageModel<D>,
        _data: &'a RlhfData,
    ) -> Result<Built<'a, D>> {
        bail!("the toy method trains nothing")
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{load_spec, LoadOptions};
    use crate::stages::{load_stage_data, StageData};

    #[test]
    fn a_registered_method_reads_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let pairs = (0..10)
            .map(|i| format!("{{\"prompt\":\"问{i}\",\"chosen\":\"好\",\"rejected\":\"坏\"}}\n"))
            .collect::<String>();
        std::fs::write(dir.path().join("prefs.jsonl"), pairs).unwrap();
        let spec = "name = \"t\"\n[model]\npreset = \"nano\"\nblock_size = 16\n[tokenizer]\nkind = \"char\"\nvocab_size = 64\n[[stages]]\nname = \"base\"\nkind = \"pretrain\"\ndata = \"prefs.jsonl\"\n[[stages]]\nname = \"toy\"\nkind = \"rlhf\"\nalgorithm = \"toy\"\nfrom = \"base\"\ndata = \"prefs.jsonl\"\nval_fraction = 0.2\n";
        let path = dir.path().join("toy.toml");
        std::fs::write(&path, spec).unwrap();
        let loaded = load_spec(&path, &LoadOptions::default()).unwrap();
        let stage = &loaded.spec.stages[1];
        let data = load_stage_data(stage, loaded.spec.seed, &|key| key.to_string()).unwrap();
        let StageData::Rlhf { data, .. } = &data else {
            panic!("an rlhf stage's data")
        };
        let (train, val, _) = data.records().unwrap();
        assert_eq!(train.len() + val.len(), 10);
        assert!(data.texts().contains(&"问3"));
    }
}
