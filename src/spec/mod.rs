//! Experiment specs: the TOML schema, loading with `--set` overrides and errors that point
//! at `file:line:column`, and sweep expansion.
//!
//! Files, in the order a spec flows through them:
//! - `schema.rs`    the serde types of the experiment file
//! - `kinds.rs`     the words naming what a stage does: kind, algorithm (the list of RLHF
//!   methods), GRPO checker
//! - `flat.rs`      a stage as written: one flat TOML table, every key with its default
//! - `stage.rs`     a stage as used: its typed form per method, converted from the flat one
//! - `methods/`     the RLHF methods, a file each: keys, ranges, inputs
//! - `data_entry.rs` a stage's `data` entries: paths, or weighted sources of a mixture
//! - `source.rs`    where each key sits in the text (for error positions)
//! - `overrides.rs` `--set key=value`, applied to the TOML document
//! - `keys.rs`      which keys each table accepts (unknown-key errors)
//! - `suggest.rs`   "did you mean ...?"
//! - `problem.rs`   a problem found in a spec (its key path and message), and the range rules
//! - `sampling.rs`  how answers are sampled: every sampling group as one `SampleSettings`,
//!   each setting's rule once
//! - `validate.rs`  ranges, references between stages, judges' rules
//! - `pretrained.rs` a run based on a pretrained stage: its rules, its folder, its content hash
//! - `paths.rs`     data paths: spec-relative, `$DATA/...`, data root
//! - `errors.rs`    one-paragraph located error messages
//! - `load.rs`      `load_spec`: all of the above, plus the run id
//! - `sweep.rs`     sweep files: grid and random points over spec keys
//! - `json_schema.rs` the JSON Schema of both files, for editors (`gptlab schema`)

pub mod data_entry;
pub mod errors;
pub mod flat;
pub mod json_schema;
pub mod keys;
pub mod kinds;
pub mod load;
pub mod lora;
pub mod methods;
pub mod overrides;
pub mod paths;
pub mod pretrained;
pub mod problem;
pub mod reference;
pub mod report_prompt;
pub mod sampling;
pub mod schema;
pub mod schema_of;
pub mod source;
pub mod stage;
pub mod stage_keys;
pub mod suggest;
pub mod sweep;
#[cfg(test)]
pub mod test_support;
pub mod validate;

pub use data_entry::{sources_of, DataEntry, Source, Transform};
pub use kinds::{Algorithm, Checker, StageKind};
pub use load::{data_root_from, expand_spec_args, load_spec, run_id_of, LoadOptions, LoadedSpec};
pub use lora::{LoraKeys, LoraTarget};
pub use methods::rollout::Rollout;
pub use methods::RlhfKeys;
pub use paths::{rating_path, RATING_FILES};
pub use report_prompt::{conversation_key, ReportPrompt};
pub use sampling::SampleSettings;
pub use schema::{
    Device, Experiment, JudgeSpec, ModelSpec, Preset, Probe, ReportEval, ReportSpec, Sampling,
    TokenizerKindSpec, TokenizerSpec,
};
pub use stage::{default_min_lr, FeedbackKeys, Method, Stage};
pub use sweep::{load_sweep, load_sweep_with, read_sweep, Sweep, SweepPoint};
