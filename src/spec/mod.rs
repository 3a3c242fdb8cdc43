//! Experiment specs: the TOML schema, loading with `--set` overrides and errors that point
//! at `file:line:column`, and sweep expansion.
//!
//! Files, in the order a spec flows through them:
//! - `schema.rs`    the serde types of the experiment file
//! - `kinds.rs`     the words naming what a stage does: kind, algorithm, GRPO checker
//! - `stage.rs`     a stage: its flat TOML form, its typed form per method, and defaults
//! - `data_entry.rs` a stage's `data` entries: paths, or weighted sources of a mixture
//! - `source.rs`    where each key sits in the text (for error positions)
//! - `overrides.rs` `--set key=value`, applied to the TOML document
//! - `keys.rs`      which keys each table accepts (unknown-key errors)
//! - `suggest.rs`   "did you mean ...?"
//! - `problem.rs`   a problem found in a spec: its key path and message
//! - `validate.rs`  ranges, references between stages, judges' rules
//! - `paths.rs`     data paths: spec-relative, `$DATA/...`, data root
//! - `errors.rs`    one-paragraph located error messages
//! - `load.rs`      `load_spec`: all of the above, plus the run id
//! - `sweep.rs`     sweep files: grid and random points over spec keys

pub mod data_entry;
pub mod errors;
pub mod keys;
pub mod kinds;
pub mod load;
pub mod overrides;
pub mod paths;
pub mod problem;
pub mod report_prompt;
pub mod schema;
pub mod source;
pub mod stage;
pub mod suggest;
pub mod sweep;
pub mod validate;

pub use data_entry::{sources_of, DataEntry, Source, Transform};
pub use kinds::{Algorithm, Checker, StageKind};
pub use load::{data_root_from, expand_spec_args, load_spec, run_id_of, LoadOptions, LoadedSpec};
pub use paths::{rating_path, RATING_FILES};
pub use report_prompt::{conversation_key, ReportPrompt};
pub use schema::{
    Device, Experiment, JudgeSpec, ModelSpec, Preset, Probe, ReportEval, ReportSpec, Sampling,
    TokenizerKindSpec, TokenizerSpec,
};
pub use stage::{
    default_min_lr, DpoKeys, FeedbackKeys, GrpoKeys, KtoKeys, Method, PpoKeys, RolloutKeys, Stage,
};
pub use sweep::{load_sweep, load_sweep_with, read_sweep, Sweep, SweepPoint};
