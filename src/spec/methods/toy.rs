//! A method for tests only, registered by one `#[cfg(test)]` line in `rlhf_methods!` like any
//! other: it reads preference pairs and takes one key, `toy_margin` (default 0), in [0, 1],
//! declared only by a `#[cfg(test)]` field of `FlatStage`.
//! Its stage side is `stages/rlhf/toy.rs`. The tests load it through `load_spec`, the path
//! every experiment takes.

use super::{keys_view, RlhfSpec};
use crate::spec::flat::{FlatProblem, FlatStage};

keys_view!(ToyKeys);

impl RlhfSpec for ToyKeys {
    fn of(flat: FlatStage) -> Result<Self, FlatProblem> {
        Ok(ToyKeys(flat))
    }

    fn missing_data(&self) -> Option<&'static str> {
        Some("toy needs `data`: preference pairs")
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::methods::RlhfKeys;
    use crate::spec::test_support::{error_text as error, load_text as load};
    use crate::spec::{LoadedSpec, Method};

    const SPEC: &str = "name = \"t\"\n[model]\npreset = \"nano\"\nblock_size = 16\n[tokenizer]\nkind = \"char\"\nvocab_size = 64\n[[stages]]\nname = \"base\"\nkind = \"pretrain\"\ndata = \"a.txt\"\n[[stages]]\nname = \"toy\"\nkind = \"rlhf\"\nalgorithm = \"toy\"\nfrom = \"base\"\ndata = \"prefs.jsonl\"\n";

    #[test]
    fn a_registered_method_parses_with_its_defaults_and_overrides() {
        let loaded = load(SPEC, &[]).unwrap();
        let margin = |loaded: &LoadedSpec| match &loaded.spec.stages[1].method {
            Method::Rlhf(RlhfKeys::Toy(keys)) => keys.toy_margin,
            other => panic!("a toy stage: {other:?}"),
        };
        assert_eq!(margin(&loaded), 0.0);
        assert!(
            loaded.summary().contains("rlhf/toy"),
            "{}",
            loaded.summary()
        );
        assert!(loaded.resolved_toml.contains("algorithm = \"toy\""));
        let set = load(SPEC, &["stages.toy.toy_margin=0.5"]).unwrap();
        assert_eq!(margin(&set), 0.5);
        assert_ne!(set.run_id, loaded.run_id);
    }

    /// `toy_margin` is declared once, by a `#[cfg(test)]` field of `FlatStage`: the schema,
    /// the key reference and validation (its range, and on another method's stage) see it.
    #[test]
    fn a_key_declared_once_is_seen_everywhere() {
        let schema = crate::spec::json_schema::experiment_schema(true);
        let variants = schema["definitions"]["FlatStage"]["allOf"]
            .as_array()
            .unwrap();
        let is_toy = |v: &&serde_json::Value| v["if"]["properties"]["algorithm"]["const"] == "toy";
        let margin = &variants.iter().find(is_toy).unwrap()["then"]["properties"]["toy_margin"];
        assert_eq!(
            (margin["minimum"].as_f64(), margin["maximum"].as_f64()),
            (Some(0.0), Some(1.0))
        );
        assert!(margin["description"]
            .as_str()
            .unwrap()
            .contains("test-only"));
        let dpo = variants
            .iter()
            .find(|v| v["if"]["properties"]["algorithm"]["const"] == "dpo");
        assert!(dpo.unwrap()["then"]["properties"]
            .get("toy_margin")
            .is_none());

        let reference = crate::spec::reference::stage_reference("toy").unwrap();
        assert!(
            reference.contains("| `toy_margin` | number |  | in [0, 1] | toy | The test-only"),
            "{reference}"
        );
        assert!(!crate::spec::reference::stage_reference("dpo")
            .unwrap()
            .contains("toy_margin"));

        let text = SPEC.replace(
            "algorithm = \"toy\"",
            "algorithm = \"toy\"\ntoy_margin = 1.5",
        );
        assert!(error(&text, &[])
            .contains("`stages.toy.toy_margin`: expected a number in [0, 1], found 1.5"));
        let text = SPEC.replace(
            "algorithm = \"toy\"",
            "algorithm = \"dpo\"\ntoy_margin = 0.5",
        );
        let message = error(&text, &[]);
        assert!(
            message.contains(
                "`toy_margin` is only used by rlhf stages with algorithm `toy`, not by a dpo stage"
            ),
            "{message}"
        );
        assert!(error(&SPEC, &["stages.toy.toy_margin=-1"]).contains("found -1"));
    }

    #[test]
    fn a_registered_method_is_checked_where_it_is_written() {
        let text = SPEC.replace(
            "algorithm = \"toy\"",
            "algorithm = \"toy\"\ntoy_margin = 2.0",
        );
        let message = error(&text, &[]);
        assert!(
            message.contains("spec.toml:16:") && message.contains("`stages.toy.toy_margin`"),
            "{message}"
        );
        assert!(
            message.contains("expected a number in [0, 1], found 2"),
            "{message}"
        );
        let text = SPEC.replace("algorithm = \"toy\"", "algorithm = \"toy\"\nbeta = 0.2");
        let message = error(&text, &[]);
        assert!(
            message.contains("algorithm `dpo` or `kto`, not by a toy stage"),
            "{message}"
        );
        let text = SPEC.replace("data = \"prefs.jsonl\"\n", "");
        assert!(error(&text, &[]).contains("toy needs `data`"));
        let text = SPEC.replace("algorithm = \"toy\"\n", "");
        let message = error(&text, &[]);
        assert!(
            message.contains("`ppo`, `dpo`, `grpo`, `kto`, `toy`"),
            "{message}"
        );
        let text = SPEC.replace("\"toy\"\nfrom", "\"toyy\"\nfrom");
        let message = error(&text, &[]);
        assert!(
            message.contains("toyy") && message.contains("`toy`"),
            "{message}"
        );
    }
}
