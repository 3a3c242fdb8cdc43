//! A stage as written in TOML: one flat table with `kind` (and `algorithm` for rlhf stages)
//! beside the keys of every method, each with its default. The RLHF methods read their keys
//! from it (`methods/`) and `stage.rs` converts it into a typed `Stage`; both sit above it.
//!
//! Each field is its key's one declaration: the doc comment (one line of help), the type,
//! the serde default, the range (`#[schemars(range(..))]`, or `exclusiveMinimum`), the
//! stages that take it (`x-stages`: stage kinds, `rlhf` for every algorithm, or algorithms;
//! absent: every stage) and `x-path` for a file the run reads. Validation, the unknown-key
//! checks, `--set`, the JSON Schema and `gptlab keys` all read them (`stage_keys.rs`).

use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::data_entry::DataEntry;
use super::kinds::{Algorithm, Checker, StageKind};
use super::lora::LoraKeys;

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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlatStage {
    /// The stage's name: its folder in the run, and how other stages and `--set` refer to it.
    pub name: String,
    /// What the stage does.
    pub kind: StageKind,
    /// An earlier stage whose weights this one starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Data files or glob patterns, or `{ path, weight, name, transform }` tables; TOML
    /// accepts one or a list.
    #[serde(default, deserialize_with = "one_or_many_entries")]
    #[schemars(schema_with = "super::data_entry::entries_schema")]
    #[schemars(extend("x-path" = true))]
    pub data: Vec<DataEntry>,
    /// Optimiser steps.
    #[serde(default = "default_steps")]
    #[schemars(range(min = 1))]
    pub steps: u64,
    /// Sequences (or pairs, or prompts) per step.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// Batches whose gradients are summed before each optimiser step.
    #[serde(default = "one_usize")]
    #[schemars(range(min = 1))]
    pub grad_accum: usize,
    /// Peak learning rate (AdamW), > 0.
    #[serde(default = "default_lr")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub lr: f64,
    /// Learning rate at the end of the cosine schedule, at most `lr` (default: `lr` / 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub min_lr: Option<f64>,
    /// Steps of linear warm-up, fewer than `steps`.
    #[serde(default)]
    pub warmup_steps: u64,
    /// AdamW's decoupled weight decay.
    #[serde(default = "default_weight_decay")]
    #[schemars(range(min = 0.0))]
    pub weight_decay: f64,
    /// Gradients are scaled down to this global norm (0: no clipping).
    #[serde(default = "one_f64")]
    #[schemars(range(min = 0.0))]
    pub grad_clip: f64,
    /// Adam's two betas, each in [0, 1).
    #[serde(default = "default_betas")]
    #[schemars(extend("items" = { "type": "number", "minimum": 0.0, "exclusiveMaximum": 1.0 }))]
    pub betas: [f64; 2],
    /// Steps between evaluations on the held-out data.
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// Batches per evaluation.
    #[serde(default = "default_eval_batches")]
    #[schemars(range(min = 1))]
    pub eval_batches: usize,
    /// Share of `data` held out for evaluation, in [0, 0.5].
    #[serde(default = "default_val_fraction")]
    #[schemars(range(min = 0.0, max = 0.5))]
    pub val_fraction: f64,
    /// A held-out file to evaluate on instead of a share of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-path" = true))]
    pub val_data: Option<PathBuf>,
    /// Hold out whole groups of conversations (e.g. every question about one poem), by this
    /// JSONL field, so that held-out questions are about things never trained on.
    // Absent unless written, so that specs without it keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_group: Option<String>,
    /// Steps between resumable checkpoints (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// SFT data whose loss is mixed into an RLHF stage's (InstructGPT's PPO-ptx), so the
    /// policy keeps what it learnt.
    // Written only when set, so that specs without them keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-stages" = ["rlhf"], "x-path" = true))]
    pub ptx_data: Option<PathBuf>,
    /// Weight of the SFT loss on `ptx_data`, > 0; needs `ptx_data`.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    #[schemars(extend("x-stages" = ["rlhf"]))]
    pub ptx_coef: f64,
    /// Train low-rank adapters on the frozen `from` model instead of every weight:
    /// `{ rank, alpha, dropout, targets }` (peft's LoRA on GPT-2's linear layers).
    // Written only when set, so that specs without it keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-stages" = ["sft", "reward", "rlhf"]))]
    pub lora: Option<LoraKeys>,
    /// Recompute each block's activations in the backward instead of keeping them from the
    /// forward (transformers' `gradient_checkpointing`): a step holds one block's activations
    /// at a time, for one more forward of the blocks. Same gradients; not with LoRA `dropout`.
    // Written only when set, so that specs without it keep their run ids.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("x-stages" = ["pretrain", "sft", "reward", "rlhf"]))]
    pub gradient_checkpointing: bool,

    // The keys of some methods only (`x-stages`).
    /// The RLHF method of an rlhf stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-stages" = ["rlhf"]))]
    pub algorithm: Option<Algorithm>,
    /// An earlier stage of kind `reward` that scores the sampled answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-stages" = ["ppo", "grpo"]))]
    pub reward_model: Option<String>,
    /// A JSONL file of prompts to sample answers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-stages" = ["ppo", "grpo", "feedback"], "x-path" = true))]
    pub prompts: Option<PathBuf>,
    /// Weight of the KL penalty to the starting model.
    #[serde(default = "default_kl_coef")]
    #[schemars(range(min = 0.0))]
    #[schemars(extend("x-stages" = ["ppo", "grpo"]))]
    pub kl_coef: f64,
    /// Strength of the implicit KL constraint to the reference model, > 0.
    #[serde(default = "default_beta")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    #[schemars(extend("x-stages" = ["dpo", "kto"]))]
    pub beta: f64,
    /// Weight of the chosen answers' NLL added to DPO's loss (TRL's `rpo_alpha`); 0 is plain
    /// DPO.
    // Written only when set, so that specs without it keep their run ids.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0.0))]
    #[schemars(extend("x-stages" = ["dpo"]))]
    pub rpo_alpha: f64,
    /// Weight of the 👍 examples' loss.
    // KTO's weights: written only when not 1, so that specs without them keep their run ids.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    #[schemars(range(min = 0.0))]
    #[schemars(extend("x-stages" = ["kto"]))]
    pub desirable_weight: f64,
    /// Weight of the 👎 examples' loss.
    #[serde(default = "one_f64", skip_serializing_if = "is_one")]
    #[schemars(range(min = 0.0))]
    #[schemars(extend("x-stages" = ["kto"]))]
    pub undesirable_weight: f64,
    /// Answers sampled per prompt and compared with each other, at least 2.
    #[serde(default = "default_group_size")]
    #[schemars(range(min = 2))]
    #[schemars(extend("x-stages" = ["grpo"]))]
    pub group_size: usize,
    /// How an answer is scored against the prompt's reference when there is no reward model.
    #[serde(default)]
    #[schemars(extend("x-stages" = ["grpo"]))]
    pub checker: Checker,
    /// Optimisation passes over each batch of sampled answers.
    #[serde(default = "default_ppo_epochs")]
    #[schemars(range(min = 1))]
    #[schemars(extend("x-stages" = ["ppo", "grpo"]))]
    pub ppo_epochs: usize,
    /// The clipped objective's range for the probability ratio, > 0.
    #[serde(default = "default_clip_range")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    #[schemars(extend("x-stages" = ["ppo", "grpo"]))]
    pub clip_range: f64,
    /// Weight of the value loss.
    #[serde(default = "default_vf_coef")]
    #[schemars(range(min = 0.0))]
    #[schemars(extend("x-stages" = ["ppo"]))]
    pub vf_coef: f64,
    /// Discount of future rewards (GAE), in [0, 1].
    #[serde(default = "one_f64")]
    #[schemars(range(min = 0.0, max = 1.0))]
    #[schemars(extend("x-stages" = ["ppo"]))]
    pub gamma: f64,
    /// GAE's lambda, in [0, 1].
    #[serde(default = "default_lam")]
    #[schemars(range(min = 0.0, max = 1.0))]
    #[schemars(extend("x-stages" = ["ppo"]))]
    pub lam: f64,
    /// Prompts sampled per rollout.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    #[schemars(extend("x-stages" = ["ppo", "grpo"]))]
    pub rollout_batch: usize,
    /// Longest sampled answer, in tokens.
    #[serde(default = "default_rlhf_max_new_tokens")]
    #[schemars(range(min = 1))]
    #[schemars(extend("x-stages" = ["ppo", "grpo", "feedback"]))]
    pub max_new_tokens: usize,
    /// Sampling temperature of the answers, >= 0 (0: greedy); > 0 for grpo, whose group of
    /// greedy answers would all be the same.
    #[serde(default = "one_f64")]
    #[schemars(range(min = 0.0))]
    #[schemars(extend("x-stages" = ["ppo", "grpo", "feedback"]))]
    pub temperature: f64,
    /// The judge (`[judges.NAME]`) that rates the answers.
    // A feedback stage's keys: written only when set, so that other specs keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-stages" = ["feedback"]))]
    pub judge: Option<String>,
    /// Answers sampled per prompt and rated, at least 2.
    #[serde(
        default = "default_samples",
        skip_serializing_if = "is_default_samples"
    )]
    #[schemars(range(min = 2))]
    #[schemars(extend("x-stages" = ["feedback"]))]
    pub samples: usize,
    /// Probability that a rating is flipped (a rater's mistakes), in [0, 0.5].
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0.0, max = 0.5))]
    #[schemars(extend("x-stages" = ["feedback"]))]
    pub noise: f64,
    /// A Hugging Face GPT-2 folder: config.json, model.safetensors, and tokenizer.json, or
    /// vocab.json + merges.txt, or vocab.txt.
    // Written only when set, so that other specs keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-stages" = ["pretrained"], "x-path" = true))]
    pub path: Option<PathBuf>,
    /// The test-only `toy` method's one key, in [0, 1]: declared by this field alone, so the
    /// tests show that the schema, the key reference and validation follow a declaration.
    #[cfg(test)]
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0.0, max = 1.0), extend("x-stages" = ["toy"]))]
    pub toy_margin: f64,
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
fn is_false(x: &bool) -> bool {
    !x
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
