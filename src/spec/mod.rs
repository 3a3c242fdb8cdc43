//! Experiment specs: the TOML schema, loading with `--set` overrides and errors that point
//! at `file:line:column`, and sweep expansion.
//!
//! Files, in the order a spec flows through them:
//! - `schema.rs`    the serde types of the experiment file
//! - `stage.rs`     a stage: its flat TOML form, its typed form per method, and defaults
//! - `methods/`     the RLHF methods, a file each (keys, ranges, inputs) and their list
//! - `data_entry.rs` a stage's `data` entries: paths, or weighted sources of a mixture
//! - `source.rs`    where each key sits in the text (for error positions)
//! - `overrides.rs` `--set key=value`, applied to the TOML document
//! - `keys.rs`      which keys each table accepts (unknown-key errors)
//! - `suggest.rs`   "did you mean ...?"
//! - `validate.rs`  ranges, references between stages, judges' rules
//! - `paths.rs`     data paths: spec-relative, `$DATA/...`, data root
//! - `errors.rs`    one-paragraph located error messages
//! - `load.rs`      `load_spec`: all of the above, plus the run id
//! - `sweep.rs`     sweep files: grid and random points over spec keys

pub mod data_entry;
pub mod errors;
pub mod keys;
pub mod load;
pub mod methods;
pub mod overrides;
pub mod paths;
pub mod report_prompt;
pub mod schema;
pub mod source;
pub mod stage;
pub mod suggest;
pub mod sweep;
pub mod validate;

pub use data_entry::{sources_of, DataEntry, Source, Transform};
pub use load::{data_root_from, expand_spec_args, load_spec, run_id_of, LoadOptions, LoadedSpec};
pub use methods::rollout::RolloutKeys;
pub use methods::RlhfKeys;
pub use paths::{rating_path, RATING_FILES};
pub use report_prompt::{conversation_key, ReportPrompt};
pub use schema::{
    Algorithm, Checker, Device, Experiment, JudgeSpec, ModelSpec, Preset, Probe, ReportEval,
    ReportSpec, Sampling, StageKind, TokenizerKindSpec, TokenizerSpec,
};
pub use stage::{default_min_lr, FeedbackKeys, Method, Stage};
pub use sweep::{load_sweep, load_sweep_with, read_sweep, Sweep, SweepPoint};
