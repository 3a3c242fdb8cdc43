//! The experiment spec as Rust types: one struct per TOML table, with the defaults of the
//! shared spec format (see DESIGN.md). Unknown keys are rejected everywhere; `load.rs` turns
//! serde's terse errors into messages that name the file, line and key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::stage::Stage;

/// A whole experiment file: the model, its tokenizer, the stages to run in order and the
/// report to build at the end. Loading reads the stages as `FlatStage`s first, then converts
/// them (`Experiment<FlatStage>` -> `Experiment`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment<S = Stage> {
    /// The experiment's name: its folder under `results/`.
    pub name: String,
    /// Seeds every random choice of the run (initial weights, batches, sampling).
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    /// Where to train: `cuda` needs a build with `--features cuda`.
    pub device: Device,
    /// The model's size.
    pub model: ModelSpec,
    /// How text becomes tokens. A run whose base is a `pretrained` stage uses the checkpoint's
    /// tokenizer and has no [tokenizer] table.
    // Absent only then, and left out of the resolved spec, so other specs keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerSpec>,
    /// The stages, run in order; each may start from an earlier one (`from`).
    #[schemars(length(min = 1))]
    pub stages: Vec<S>,
    /// What the final report shows.
    #[serde(default)]
    pub report: ReportSpec,
    /// `[judges.NAME]`: declared rules that score answers, by name. Left out of the resolved
    /// spec when there are none, so specs written before judges keep their run ids.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub judges: BTreeMap<String, JudgeSpec>,
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
            judges: self.judges,
        })
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// One of the compiled model sizes. A run whose base is a `pretrained` stage has its
    /// checkpoint's: leave it out (or name that one).
    // Absent only then, and left out of the resolved spec, so other specs keep their run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Context length actually used; at most the preset's compiled maximum (nano 128, small
    /// and medium 256, gpt2 1024).
    #[schemars(range(min = 1, max = 1024))]
    pub block_size: usize,
}

/// The compiled model sizes (see the model module); the spec only names one.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Tests and the quickstart: trains in seconds (context up to 128).
    Nano,
    /// About nanoGPT's CPU config: 4 layers, 4 heads, 128 wide (context up to 256).
    Small,
    /// About nanoGPT's shakespeare-char: 6 layers, 6 heads, 384 wide (context up to 256).
    Medium,
    /// GPT-2 small, 124M parameters, for CUDA (context up to 1024).
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    /// `char`: one token per character; `bpe`: byte-level BPE trained on the data.
    pub kind: TokenizerKindSpec,
    /// Total size including special tokens: 16 to 8192 (at least 300 for bpe).
    #[schemars(range(min = 16, max = 8192))]
    pub vocab_size: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, JsonSchema)]
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

/// What the final report shows; the whole `[report]` table is optional.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Asked of every stage in `compare`: prompts, or conversations (lists of turns).
    #[serde(default)]
    pub prompts: Vec<super::ReportPrompt>,
    /// Next-token probes: the probability of each candidate continuation of a prompt.
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// Stage names whose answers sit side by side.
    #[serde(default)]
    pub compare: Vec<String>,
    /// How the report's answers are sampled.
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportEval {
    /// Questions with answers: SFT pairs, or prompts with a `reference` (and `task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-path" = true))]
    pub data: Option<PathBuf>,
    /// The SFT stage whose held-out questions are asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<String>,
    /// Ask at most this many questions (all by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit: Option<usize>,
    /// A judge (`[judges.NAME]`) that scores `samples` answers of every compared stage to
    /// the same questions: the gold measures (`gold/rate`, `gold/win_vs/<baseline>`,
    /// `kl_vs/<baseline>`, and `reward` when the run has a reward stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    /// The questions the judge is asked about (prompts or SFT pairs; default: the exact-match
    /// questions above). Separate files keep exact match on what the model should know apart
    /// from the judge's questions of taste, which have no one right answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-path" = true))]
    pub judge_prompts: Option<PathBuf>,
    /// Answers sampled per question for the judge (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub samples: Option<usize>,
    /// The stage the others are compared with (default: `held_out`'s stage, else the first
    /// compared SFT stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

impl ReportEval {
    pub const DEFAULT_SAMPLES: usize = 4;

    pub fn samples(&self) -> usize {
        self.samples.unwrap_or(Self::DEFAULT_SAMPLES)
    }
}

/// A next-token probe: the probability of each candidate continuation of `prompt`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// The text whose continuation is probed.
    pub prompt: String,
    /// The continuations whose probabilities are shown.
    #[schemars(length(min = 1))]
    pub candidates: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Sampling {
    /// Sampling temperature; 0 means greedy decoding.
    #[schemars(range(min = 0.0))]
    pub temperature: f64,
    /// Sample among the k likeliest tokens; 0 turns top-k filtering off.
    pub top_k: usize,
    /// Nucleus sampling: the smallest set of tokens whose probability reaches p, in (0, 1].
    #[schemars(extend("exclusiveMinimum" = 0.0, "maximum" = 1.0))]
    pub top_p: f64,
    /// Longest answer, in tokens.
    #[schemars(range(min = 1))]
    pub max_new_tokens: usize,
    /// Seeds the report's sampling.
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

/// `[judges.NAME]`: a declared taste ("answers about X, not Y") that scores an assistant's
/// answer to a prompt in [0, 1]; `eval::judge::Judge` applies it. Each rule that is set is one
/// criterion worth 0 or 1, and the score is their mean. Every rule reads the answer with its
/// surrounding whitespace trimmed (`str::trim`, which includes the ideographic space), so
/// a trailing newline from sampling changes nothing. At least one rule must be set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    /// Phrases the person likes to see: 1 when the answer contains at least one of them
    /// (plain substring, case-sensitive). A single string is read as a list of one.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    #[schemars(schema_with = "one_or_many_schema")]
    pub prefer: Vec<String>,
    /// Phrases the person dislikes: 1 when the answer contains none of them.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    #[schemars(schema_with = "one_or_many_schema")]
    pub avoid: Vec<String>,
    /// A regular expression (Rust `regex` syntax, Unicode): 1 when it matches anywhere in
    /// the answer (unanchored search; use `^` / `$` to anchor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Fewest characters (Unicode scalar values, not bytes) the answer may have. With
    /// `max_chars` it forms one criterion: 1 when the length is within both bounds, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_chars: Option<usize>,
    /// Most characters (Unicode scalar values) the answer may have, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
    /// Endings the person likes (`"。"`, `"！"`): 1 when the answer ends with one of them.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    #[schemars(schema_with = "one_or_many_schema")]
    pub ends_with: Vec<String>,
    /// A regular expression searched in the prompt as given: the judge only has an opinion
    /// on prompts it matches, and scores nothing (`None`) for the others. Unset: every prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<String>,
    /// The score at or above which the judge likes an answer (👍), in [0, 1]; default 0.5.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub threshold: f64,
}

impl Default for JudgeSpec {
    fn default() -> Self {
        JudgeSpec {
            prefer: Vec::new(),
            avoid: Vec::new(),
            regex: None,
            min_chars: None,
            max_chars: None,
            ends_with: Vec::new(),
            applies_to: None,
            threshold: default_threshold(),
        }
    }
}

impl JudgeSpec {
    /// Whether any rule is set; a judge without one would have no score to give.
    pub fn has_rule(&self) -> bool {
        !self.prefer.is_empty()
            || !self.avoid.is_empty()
            || self.regex.is_some()
            || self.min_chars.is_some()
            || self.max_chars.is_some()
            || !self.ends_with.is_empty()
    }
}

/// A list of strings, or one string as a list of one: `prefer = "香蕉"` and
/// `--set judges.x.prefer=香蕉` need no brackets.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Strings;
    impl<'de> Visitor<'de> for Strings {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok(vec![value.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_any(Strings)
}

/// `one_or_many`'s values: a string, or a list of strings.
fn one_or_many_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }]
    })
}

// Defaults, named so that `#[serde(default = ...)]` can point at them.
fn default_seed() -> u64 {
    1337
}
fn default_threshold() -> f64 {
    0.5
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::data_entry::DataEntry;
    use crate::spec::flat::FlatStage;
    use crate::spec::kinds::{Algorithm, Checker, StageKind};
    use crate::spec::methods::RlhfKeys;
    use crate::spec::stage::Method;
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
        let mut expected = FlatStage::new("base", StageKind::Pretrain);
        expected.data = vec![DataEntry::plain("corpus.txt")];
        assert_eq!(spec.stages, vec![expected.into_stage().unwrap()]);
        assert!((spec.stages[0].min_lr() - 1e-4).abs() < 1e-12);
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
        let mut grpo = FlatStage::new("base", StageKind::Rlhf);
        grpo.algorithm = Some(Algorithm::Grpo);
        grpo.prompts = Some(PathBuf::from("prompts.jsonl"));
        grpo.checker = Checker::Exact;
        spec.stages[0] = grpo.into_stage().unwrap();
        assert!(matches!(
            spec.stages[0].method,
            Method::Rlhf(RlhfKeys::Grpo(_))
        ));
        let text = toml::to_string(&spec).unwrap();
        assert!(text.contains("device = \"cuda\""), "{text}");
        assert!(text.contains("algorithm = \"grpo\""), "{text}");
        assert_eq!(toml::from_str::<Experiment>(&text).unwrap(), spec);
    }

    #[test]
    fn judge_rules_default_to_unset() {
        let text = format!("{MINIMAL}\n[judges.short]\nmax_chars = 10\nprefer = \"香蕉\"\n");
        let spec: Experiment = toml::from_str(&text).unwrap();
        let short = &spec.judges["short"];
        let expected = JudgeSpec {
            prefer: vec!["香蕉".into()],
            max_chars: Some(10),
            ..JudgeSpec::default()
        };
        assert_eq!(short, &expected);
        assert_eq!(short.threshold, 0.5);
        assert!(short.has_rule());
        assert!(!JudgeSpec::default().has_rule());
        // Unset rules and empty lists are not written; the threshold always is.
        let written = toml::to_string(&spec).unwrap();
        assert!(written.contains("[judges.short]"), "{written}");
        assert!(written.contains("prefer = [\"香蕉\"]"), "{written}");
        assert!(
            !written.contains("avoid") && !written.contains("regex"),
            "{written}"
        );
        assert_eq!(toml::from_str::<Experiment>(&written).unwrap(), spec);
        // Without judges nothing is written at all.
        let plain: Experiment = toml::from_str(MINIMAL).unwrap();
        assert!(!toml::to_string(&plain).unwrap().contains("judges"));
    }

    #[test]
    fn judge_phrases_must_be_strings() {
        let text = format!("{MINIMAL}\n[judges.j]\navoid = [1]\n");
        let err = toml::from_str::<Experiment>(&text).unwrap_err();
        assert!(
            err.message().contains("expected a string"),
            "{}",
            err.message()
        );
        let text = format!("{MINIMAL}\n[judges.j]\nends_with = 1\n");
        let err = toml::from_str::<Experiment>(&text).unwrap_err();
        assert!(
            err.message().contains("a string or a list of strings"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn preset_contexts() {
        assert_eq!(Preset::Nano.max_context(), 128);
        assert_eq!(Preset::Small.max_context(), 256);
        assert_eq!(Preset::Medium.max_context(), 256);
        assert_eq!(Preset::Gpt2.max_context(), 1024);
    }
}
