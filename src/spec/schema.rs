//! The experiment spec as Rust types: one struct per TOML table, with the defaults of the
//! shared spec format (see DESIGN.md). Unknown keys are rejected everywhere; `load.rs` turns
//! serde's terse errors into messages that name the file, line and key.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::stage::Stage;

/// A whole experiment file: the model, its tokenizer, the stages to run in order and the
/// report to build at the end. Loading reads the stages as `FlatStage`s first, then converts
/// them (`Experiment<FlatStage>` -> `Experiment`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Experiment<S = Stage> {
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub device: Device,
    pub model: ModelSpec,
    pub tokenizer: TokenizerSpec,
    pub stages: Vec<S>,
    #[serde(default)]
    pub report: ReportSpec,
}

impl<S> Experiment<S> {
    /// The same experiment with each stage converted by `convert(index, stage)`.
    pub fn try_map_stages<T, E>(
        self,
        mut convert: impl FnMut(usize, S) -> Result<T, E>,
    ) -> Result<Experiment<T>, E> {
        let stages = self
            .stages
            .into_iter()
            .enumerate()
            .map(|(index, stage)| convert(index, stage))
            .collect::<Result<_, E>>()?;
        Ok(Experiment {
            name: self.name,
            seed: self.seed,
            device: self.device,
            model: self.model,
            tokenizer: self.tokenizer,
            stages,
            report: self.report,
        })
    }
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
    Kto,
}

impl Algorithm {
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::Ppo => "ppo",
            Algorithm::Dpo => "dpo",
            Algorithm::Grpo => "grpo",
            Algorithm::Kto => "kto",
        }
    }
}

/// How GRPO scores a completion when no reward model is given.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Checker {
    #[default]
    Exact,
    Contains,
    /// Partial credit: character-overlap F1 with the reference (`eval::overlap::char_f1`).
    #[serde(rename = "char_f1")]
    CharF1,
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
#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::data_entry::DataEntry;
    use crate::spec::stage::{GrpoKeys, Method, RolloutKeys};
    use std::path::PathBuf;

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
        let mut expected = Stage::new("base", Method::Pretrain);
        expected.data = vec![DataEntry::plain("corpus.txt")];
        assert_eq!(spec.stages, vec![expected]);
        assert!((spec.stages[0].min_lr - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn data_accepts_a_list() {
        let text = MINIMAL.replace("data = \"corpus.txt\"", "data = [\"a.txt\", \"b/*.jsonl\"]");
        let spec: Experiment = toml::from_str(&text).unwrap();
        assert_eq!(
            spec.stages[0].data_paths(),
            vec![PathBuf::from("a.txt"), PathBuf::from("b/*.jsonl")]
        );
    }

    #[test]
    fn data_rejects_a_number() {
        let text = MINIMAL.replace("data = \"corpus.txt\"", "data = 3");
        let err = toml::from_str::<Experiment>(&text).unwrap_err();
        assert!(
            err.message()
                .contains("a path, a { path, weight } table, or a list of them"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn enums_serialize_lowercase_and_round_trip() {
        let mut spec: Experiment = toml::from_str(MINIMAL).unwrap();
        spec.device = Device::Cuda;
        spec.stages[0].method = Method::Grpo(GrpoKeys {
            rollout: RolloutKeys {
                prompts: PathBuf::from("prompts.jsonl"),
                rollout_batch: 16,
                max_new_tokens: 32,
                temperature: 1.0,
                kl_coef: 0.05,
                ppo_epochs: 4,
                clip_range: 0.2,
            },
            reward_model: None,
            group_size: 4,
            checker: Checker::Exact,
        });
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
