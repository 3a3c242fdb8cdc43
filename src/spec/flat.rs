//! A stage as written in TOML: one flat table with `kind` (and `algorithm` for rlhf stages)
//! beside the keys of every method, each with its default. The RLHF methods read their keys
//! from it (`methods/`) and `stage.rs` converts it into a typed `Stage`; both sit above it.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::data_entry::DataEntry;
use super::kinds::{Algorithm, Checker, StageKind};

/// Why a flat stage is no valid stage: the key at fault and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatProblem {
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for FlatProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// A stage as written in TOML: one table with `kind` (and `algorithm` for rlhf stages) beside
/// the keys of every method, each with its default. This is the serde form only: loading
/// checks which keys the stage's method takes (`keys.rs`) and converts it into a `Stage`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlatStage {
    pub name: String,
    pub kind: StageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Data files or glob patterns, or `{ path, weight, name, transform }` tables; TOML
    /// accepts one or a list.
    #[serde(default, deserialize_with = "one_or_many_entries")]
    pub data: Vec<DataEntry>,
    #[serde(default = "default_steps")]
    pub steps: u64,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "one_usize")]
    pub grad_accum: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_lr: Option<f64>,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "one_f64")]
    pub grad_clip: f64,
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    #[serde(default = "default_eval_batches")]
    pub eval_batches: usize,
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_data: Option<PathBuf>,
    // Absent unless written, so that specs without it keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_group: Option<String>,
    #[serde(default)]
    pub checkpoint_every: u64,
    // Written only when set, so that specs without them keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptx_data: Option<PathBuf>,
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub ptx_coef: f64,

    // The keys of some methods only (see `own_keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<PathBuf>,
    #[serde(default = "default_kl_coef")]
    pub kl_coef: f64,
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// Written only when set, so that specs without it keep their run ids.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rpo_alpha: f64,
    /// KTO's weights: written only when not 1, so that specs without them keep their run ids.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub desirable_weight: f64,
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    pub undesirable_weight: f64,
    #[serde(default = "default_group_size")]
    pub group_size: usize,
    #[serde(default)]
    pub checker: Checker,
    #[serde(default = "default_ppo_epochs")]
    pub ppo_epochs: usize,
    #[serde(default = "default_clip_range")]
    pub clip_range: f64,
    #[serde(default = "default_vf_coef")]
    pub vf_coef: f64,
    #[serde(default = "one_f64")]
    pub gamma: f64,
    #[serde(default = "default_lam")]
    pub lam: f64,
    #[serde(default = "default_batch_size")]
    pub rollout_batch: usize,
    #[serde(default = "default_rlhf_max_new_tokens")]
    pub max_new_tokens: usize,
    #[serde(default = "one_f64")]
    pub temperature: f64,
    /// A feedback stage's keys: written only when set, so that other specs keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    #[serde(
        default = "default_samples",
        skip_serializing_if = "is_default_samples"
    )]
    pub samples: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub noise: f64,
}

fn default_samples() -> usize {
    4
}

fn is_default_samples(n: &usize) -> bool {
    *n == default_samples()
}

impl FlatStage {
    /// Every default, as if only `name` and `kind` were written: read through serde, so
    /// that the `#[serde(default = ...)]` attributes above are the one place for defaults.
    pub fn new(name: &str, kind: StageKind) -> FlatStage {
        let written = [("name", name), ("kind", kind.as_str())];
        let table = de::value::MapDeserializer::<_, de::value::Error>::new(written.into_iter());
        FlatStage::deserialize(table)
            .expect("`name` and `kind` are the only keys without a default")
    }
}

// Defaults, named so that `#[serde(default = ...)]` can point at them.
fn default_steps() -> u64 {
    500
}
fn default_batch_size() -> usize {
    16
}
fn one_usize() -> usize {
    1
}
fn one_f64() -> f64 {
    1.0
}
fn default_lr() -> f64 {
    1e-3
}
fn default_weight_decay() -> f64 {
    0.1
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.95]
}
fn default_eval_every() -> u64 {
    100
}
fn default_eval_batches() -> usize {
    20
}
fn default_val_fraction() -> f64 {
    0.1
}
fn default_kl_coef() -> f64 {
    0.05
}
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}
fn is_one(x: &f64) -> bool {
    *x == 1.0
}
fn default_beta() -> f64 {
    0.1
}
fn default_group_size() -> usize {
    4
}
fn default_ppo_epochs() -> usize {
    4
}
fn default_clip_range() -> f64 {
    0.2
}
fn default_vf_coef() -> f64 {
    0.1
}
fn default_lam() -> f64 {
    0.95
}
fn default_rlhf_max_new_tokens() -> usize {
    32
}

/// `data = "a.txt"`, `data = { path = "a.txt", weight = 0.5 }` and a list of either all mean
/// a list of entries.
fn one_or_many_entries<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<DataEntry>, D::Error> {
    struct EntriesVisitor;

    impl<'de> Visitor<'de> for EntriesVisitor {
        type Value = Vec<DataEntry>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a path, a { path, weight } table, or a list of them")
        }

        fn visit_str<E: de::Error>(self, path: &str) -> Result<Self::Value, E> {
            Ok(vec![DataEntry::plain(path)])
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Ok(vec![DataEntry::deserialize(
                de::value::MapAccessDeserializer::new(map),
            )?])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = seq.next_element::<DataEntry>()? {
                entries.push(entry);
            }
            Ok(entries)
        }
    }

    deserializer.deserialize_any(EntriesVisitor)
}
