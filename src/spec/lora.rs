//! A stage's `lora` table: train low-rank adapters on a frozen base instead of every weight
//! (Hu et al. 2021), as peft's `LoraConfig` does for GPT-2. Each key is declared once, here,
//! with its doc, default and range; `validate.rs` checks the ranges (`check_declared`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `lora = { rank = 8, alpha = 16, dropout = 0.0, targets = ["attn", "mlp"] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoraKeys {
    /// Rank of each adapter (peft's `r`), at least 1.
    #[serde(default = "default_rank")]
    #[schemars(range(min = 1))]
    pub rank: usize,
    /// The update is scaled by `alpha / rank` (peft's `lora_alpha`), > 0.
    #[serde(default = "default_alpha")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub alpha: f64,
    /// Dropout on each adapter's input while training, in [0, 1).
    #[serde(default)]
    #[schemars(range(min = 0.0), extend("exclusiveMaximum" = 1.0))]
    pub dropout: f64,
    /// The linear layers that get adapters: `attn` (GPT-2's `c_attn` and `attn.c_proj`),
    /// `mlp` (`c_fc` and `mlp.c_proj`), or those module names one by one.
    #[serde(default = "default_targets")]
    #[schemars(length(min = 1))]
    pub targets: Vec<LoraTarget>,
}

/// A layer (or group of layers) of every block that takes an adapter, by GPT-2's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoraTarget {
    /// `c_attn` and `attn.c_proj`.
    #[serde(rename = "attn")]
    Attn,
    /// `c_fc` and `mlp.c_proj`.
    #[serde(rename = "mlp")]
    Mlp,
    /// The fused query, key and value projection.
    #[serde(rename = "c_attn")]
    CAttn,
    /// Attention's output projection.
    #[serde(rename = "attn.c_proj")]
    AttnCProj,
    /// The MLP's first layer.
    #[serde(rename = "c_fc")]
    CFc,
    /// The MLP's second layer.
    #[serde(rename = "mlp.c_proj")]
    MlpCProj,
}

impl LoraTarget {
    /// The GPT-2 module names this target covers.
    pub fn modules(self) -> &'static [&'static str] {
        match self {
            LoraTarget::Attn => &["c_attn", "attn.c_proj"],
            LoraTarget::Mlp => &["c_fc", "mlp.c_proj"],
            LoraTarget::CAttn => &["c_attn"],
            LoraTarget::AttnCProj => &["attn.c_proj"],
            LoraTarget::CFc => &["c_fc"],
            LoraTarget::MlpCProj => &["mlp.c_proj"],
        }
    }
}

impl LoraKeys {
    /// Every module the targets cover, once each, in GPT-2's order within a block.
    pub fn modules(&self) -> Vec<&'static str> {
        let all = ["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"];
        let named: Vec<&str> = self
            .targets
            .iter()
            .flat_map(|t| t.modules())
            .copied()
            .collect();
        all.into_iter().filter(|m| named.contains(m)).collect()
    }
}

fn default_rank() -> usize {
    8
}
fn default_alpha() -> f64 {
    16.0
}
fn default_targets() -> Vec<LoraTarget> {
    vec![LoraTarget::Attn, LoraTarget::Mlp]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_peft_like_and_targets_expand_to_gpt2_modules() {
        let keys: LoraKeys = toml::from_str("").unwrap();
        assert_eq!((keys.rank, keys.alpha, keys.dropout), (8, 16.0, 0.0));
        assert_eq!(
            keys.modules(),
            ["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"]
        );
        let keys: LoraKeys =
            toml::from_str("targets = [\"mlp.c_proj\", \"c_attn\", \"attn\"]").unwrap();
        assert_eq!(keys.modules(), ["c_attn", "attn.c_proj", "mlp.c_proj"]);
        assert!(toml::from_str::<LoraKeys>("targets = [\"q\"]").is_err());
        assert!(toml::from_str::<LoraKeys>("rnak = 4").is_err());
    }
}

#[cfg(test)]
mod spec_tests {
    use crate::spec::test_support::{error_text as error, load_text as load};

    const SPEC: &str = "name = \"t\"\n[model]\npreset = \"nano\"\nblock_size = 16\n[tokenizer]\nkind = \"char\"\nvocab_size = 64\n[[stages]]\nname = \"base\"\nkind = \"pretrain\"\ndata = \"a.txt\"\n[[stages]]\nname = \"sft\"\nkind = \"sft\"\nfrom = \"base\"\ndata = \"sft.jsonl\"\n";

    fn with_lora(table: &str) -> String {
        format!("{SPEC}lora = {table}\n")
    }

    #[test]
    fn a_stage_takes_a_lora_table_and_its_keys_are_checked() {
        let plain = load(SPEC, &[]).unwrap();
        assert!(plain.spec.stages[1].lora.is_none());
        let loaded = load(&with_lora("{ rank = 4, targets = [\"mlp\"] }"), &[]).unwrap();
        let lora = loaded.spec.stages[1].lora.as_ref().unwrap();
        assert_eq!((lora.rank, lora.alpha), (4, 16.0));
        assert_ne!(loaded.run_id, plain.run_id);
        let set = load(SPEC, &["stages.sft.lora.rank=16"]).unwrap();
        assert_eq!(set.spec.stages[1].lora.as_ref().unwrap().rank, 16);

        let message = error(&with_lora("{ rank = 0 }"), &[]);
        assert!(message.contains("`stages.sft.lora.rank`"), "{message}");
        let message = error(&with_lora("{ dropout = 1.0 }"), &[]);
        assert!(message.contains("`stages.sft.lora.dropout`"), "{message}");
        let message = error(&with_lora("{ rnak = 4 }"), &[]);
        assert!(message.contains("did you mean `rank`"), "{message}");
        let message = error(&with_lora("{ targets = [\"q_proj\"] }"), &[]);
        assert!(message.contains("q_proj"), "{message}");
        let base = SPEC.replace("data = \"a.txt\"", "data = \"a.txt\"\nlora = { rank = 4 }");
        let message = error(&base, &[]);
        assert!(message.contains("not by a pretrain stage"), "{message}");
    }
}
