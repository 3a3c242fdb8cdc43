//! The experiment spec as Rust types: one struct per TOML table, with the defaults of the
//! shared spec format (see DESIGN.md). Unknown keys are rejected everywhere; `load.rs` turns
//! serde's terse errors into messages that name the file, line and key.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A whole experiment file: the model, its tokenizer, the stages to run in order and the
/// report to build at the end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub device: Device,
    pub model: ModelSpec,
    pub tokenizer: TokenizerSpec,
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub report: ReportSpec,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub preset: Preset,
    /// Context length actually used; at most the preset's compiled maximum.
    pub block_size: usize,
}

/// The compiled model sizes (see the model module); the spec only names one.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Nano,
    Small,
    Medium,
    Gpt2,
}

impl Preset {
    pub fn as_str(&self) -> &'static str {
        match self {
            Preset::Nano => "nano",
            Preset::Small => "small",
            Preset::Medium => "medium",
            Preset::Gpt2 => "gpt2",
        }
    }

    /// The longest context the preset was compiled for: `block_size` may not exceed it.
    pub fn max_context(&self) -> usize {
        match self {
            Preset::Nano => 128,
            Preset::Small => 256,
            Preset::Medium => 256,
            Preset::Gpt2 => 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    pub kind: TokenizerKindSpec,
    /// Total size including special tokens.
    pub vocab_size: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKindSpec {
    Char,
    Bpe,
}

impl TokenizerKindSpec {
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenizerKindSpec::Char => "char",
            TokenizerKindSpec::Bpe => "bpe",
        }
    }

    /// Allowed `vocab_size` range: a byte-level BPE needs its 256 byte tokens plus merges.
    pub fn vocab_range(&self) -> std::ops::RangeInclusive<usize> {
        match self {
            TokenizerKindSpec::Char => 16..=8192,
            TokenizerKindSpec::Bpe => 300..=8192,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Pretrain,
    Sft,
    Reward,
    Rlhf,
}

impl StageKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            StageKind::Pretrain => "pretrain",
            StageKind::Sft => "sft",
            StageKind::Reward => "reward",
            StageKind::Rlhf => "rlhf",
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Ppo,
    Dpo,
    Grpo,
}

impl Algorithm {
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::Ppo => "ppo",
            Algorithm::Dpo => "dpo",
            Algorithm::Grpo => "grpo",
        }
    }
}

/// What a stage trains: one value per stage kind, and per algorithm for rlhf stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pretrain,
    Sft,
    Reward,
    Ppo,
    Dpo,
    Grpo,
}

/// How GRPO scores a completion when no reward model is given.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Checker {
    #[default]
    Exact,
    Contains,
}

/// One training stage. The RLHF fields are present on every stage (with defaults) so that
/// the resolved spec shows every value a run used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub name: String,
    pub kind: StageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Data files or glob patterns; TOML accepts a single string or a list.
    #[serde(default, deserialize_with = "one_or_many_paths")]
    pub data: Vec<PathBuf>,
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
    #[serde(default)]
    pub checkpoint_every: u64,

    // rlhf only
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
}

impl Stage {
    /// A stage with every default filled in, as if only `name` and `kind` were written.
    pub fn new(name: &str, kind: StageKind) -> Stage {
        Stage {
            name: name.to_string(),
            kind,
            from: None,
            data: Vec::new(),
            steps: default_steps(),
            batch_size: default_batch_size(),
            grad_accum: 1,
            lr: default_lr(),
            min_lr: None,
            warmup_steps: 0,
            weight_decay: default_weight_decay(),
            grad_clip: 1.0,
            betas: default_betas(),
            eval_every: default_eval_every(),
            eval_batches: default_eval_batches(),
            val_fraction: default_val_fraction(),
            val_data: None,
            checkpoint_every: 0,
            algorithm: None,
            reward_model: None,
            prompts: None,
            kl_coef: default_kl_coef(),
            beta: default_beta(),
            group_size: default_group_size(),
            checker: Checker::Exact,
            ppo_epochs: default_ppo_epochs(),
            clip_range: default_clip_range(),
            vf_coef: default_vf_coef(),
            gamma: 1.0,
            lam: default_lam(),
            rollout_batch: default_batch_size(),
            max_new_tokens: default_rlhf_max_new_tokens(),
            temperature: 1.0,
        }
    }

    /// What the stage trains, decided once from `kind` and `algorithm`. Validation has
    /// made sure that only rlhf stages have an algorithm and that each of them has one.
    pub fn method(&self) -> Method {
        match (self.kind, self.algorithm) {
            (StageKind::Pretrain, _) => Method::Pretrain,
            (StageKind::Sft, _) => Method::Sft,
            (StageKind::Reward, _) => Method::Reward,
            (StageKind::Rlhf, Some(Algorithm::Ppo)) => Method::Ppo,
            (StageKind::Rlhf, Some(Algorithm::Grpo)) => Method::Grpo,
            (StageKind::Rlhf, Some(Algorithm::Dpo) | None) => Method::Dpo,
        }
    }

    /// The floor of the cosine schedule: written, or a tenth of the peak rate.
    pub fn min_lr(&self) -> f64 {
        self.min_lr.unwrap_or(self.lr / 10.0)
    }
}

/// What the final report shows; the whole `[report]` table is optional.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Asked of every stage in `compare`.
    #[serde(default)]
    pub prompts: Vec<String>,
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// Stage names whose answers sit side by side.
    #[serde(default)]
    pub compare: Vec<String>,
    #[serde(default)]
    pub sampling: Sampling,
    /// Exact match by task of every compared stage, measured when the run ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<ReportEval>,
}

/// `[report] eval`: the questions every compared stage answers once the run has trained, for
/// exact match overall and by task (in summary.json, charted by the report). Either a file
/// (`data`) or the held-out questions of an SFT stage (`held_out`: its `val_data`, else the
/// `val_fraction` it split off its data).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ReportEval {
    /// Questions with answers: SFT pairs, or prompts with a `reference` (and `task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// The SFT stage whose held-out questions are asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<String>,
    /// Ask at most this many questions (all by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A next-token probe: the probability of each candidate continuation of `prompt`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub prompt: String,
    pub candidates: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Sampling {
    /// 0 means greedy decoding.
    pub temperature: f64,
    /// 0 turns top-k filtering off.
    pub top_k: usize,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.8,
            top_k: 20,
            top_p: 1.0,
            max_new_tokens: 48,
            seed: 0,
        }
    }
}

// Defaults, named so that `#[serde(default = ...)]` can point at them.
fn default_seed() -> u64 {
    1337
}
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

/// `data = "a.txt"` and `data = ["a.txt", "b/*.jsonl"]` both mean a list of paths.
fn one_or_many_paths<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PathBuf>, D::Error> {
    struct PathsVisitor;

    impl<'de> Visitor<'de> for PathsVisitor {
        type Value = Vec<PathBuf>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a path or a list of paths")
        }

        fn visit_str<E: de::Error>(self, path: &str) -> Result<Self::Value, E> {
            Ok(vec![PathBuf::from(path)])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut paths = Vec::new();
            while let Some(path) = seq.next_element::<String>()? {
                paths.push(PathBuf::from(path));
            }
            Ok(paths)
        }
    }

    deserializer.deserialize_any(PathsVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[model]
preset = "nano"
block_size = 64
[tokenizer]
kind = "char"
vocab_size = 128
[[stages]]
name = "base"
kind = "pretrain"
data = "corpus.txt"
"#;

    #[test]
    fn defaults_match_the_spec_format() {
        let spec: Experiment = toml::from_str(MINIMAL).unwrap();
        assert_eq!(spec.seed, 1337);
        assert_eq!(spec.device, Device::Cpu);
        assert_eq!(spec.report, ReportSpec::default());
        assert_eq!(spec.report.sampling.top_k, 20);
        let mut expected = Stage::new("base", StageKind::Pretrain);
        expected.data = vec![PathBuf::from("corpus.txt")];
        assert_eq!(spec.stages, vec![expected]);
        assert!((spec.stages[0].min_lr() - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn data_accepts_a_list() {
        let text = MINIMAL.replace("data = \"corpus.txt\"", "data = [\"a.txt\", \"b/*.jsonl\"]");
        let spec: Experiment = toml::from_str(&text).unwrap();
        assert_eq!(
            spec.stages[0].data,
            vec![PathBuf::from("a.txt"), PathBuf::from("b/*.jsonl")]
        );
    }

    #[test]
    fn data_rejects_a_number() {
        let text = MINIMAL.replace("data = \"corpus.txt\"", "data = 3");
        let err = toml::from_str::<Experiment>(&text).unwrap_err();
        assert!(
            err.message().contains("a path or a list of paths"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn enums_serialize_lowercase_and_round_trip() {
        let mut spec: Experiment = toml::from_str(MINIMAL).unwrap();
        spec.device = Device::Cuda;
        spec.stages[0].algorithm = Some(Algorithm::Grpo);
        let text = toml::to_string(&spec).unwrap();
        assert!(text.contains("device = \"cuda\""), "{text}");
        assert!(text.contains("algorithm = \"grpo\""), "{text}");
        assert_eq!(toml::from_str::<Experiment>(&text).unwrap(), spec);
    }

    #[test]
    fn preset_contexts() {
        assert_eq!(Preset::Nano.max_context(), 128);
        assert_eq!(Preset::Small.max_context(), 256);
        assert_eq!(Preset::Medium.max_context(), 256);
        assert_eq!(Preset::Gpt2.max_context(), 1024);
    }
}
