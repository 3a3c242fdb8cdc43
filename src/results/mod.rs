//! The results folder: the one contract between running an experiment and reading it back.
//! The runner, the training loop, sweeps, export and bench write and find files through this
//! module, and the report knows a run only through it. Nothing else spells a file name.
//!
//! ```text
//! results/<experiment>/<run-id>/
//!   spec.toml  meta.json  summary.json  tokenizer.json  samples.jsonl  probes.jsonl
//!   report.html  report.md  feedback.jsonl  preferences.jsonl
//!   <stage>/  config.json  model.safetensors  metrics.csv  done.json  [resume.safetensors]
//! ```

pub mod adapters;
pub mod meta;
pub mod metrics;
pub mod samples;
pub mod summary;
pub mod sweep;
pub mod weights;

pub use meta::{read_meta, read_stage_record, RunMeta, StageMeta};
pub use metrics::{read_metrics_csv, MetricsTable, MetricsWriter};
pub use samples::{CandidateProb, ProbeLine, SampleLine, TokenProb};
pub use summary::{
    final_metrics, gold_best_of_key, gold_share_key, gold_win_key, kl_key, merge_into_summary,
    proxy_win_key, read_summary, task_exact_match_key, write_summary, Summary, BEST_OF,
    EVAL_EXACT_MATCH, EVAL_REWARD, GOLD_DISTINCT, GOLD_ENTROPY, GOLD_RATE, NO_TASK,
};
pub use sweep::SweepDirs;

use std::path::{Path, PathBuf};

// Files of a run folder.
/// The resolved spec the run was made from.
pub const SPEC_FILE: &str = "spec.toml";
/// What ran, where, and whether it finished ([`RunMeta`]).
pub const META_FILE: &str = "meta.json";
/// The final value of every metric of every stage ([`Summary`]).
pub const SUMMARY_FILE: &str = "summary.json";
/// The run's tokenizer, shared by its stages (also the name in an exported HF folder).
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// One [`SampleLine`] per compared stage and prompt.
pub const SAMPLES_FILE: &str = "samples.jsonl";
/// One [`ProbeLine`] per compared stage and probe.
pub const PROBES_FILE: &str = "probes.jsonl";
pub const REPORT_HTML: &str = "report.html";
pub const REPORT_MD: &str = "report.md";
/// Thumbs up/down on single answers (`gptlab chat`, `gptlab serve`), in the reward stage's
/// unpaired format: prompt / completion / label.
pub const FEEDBACK_FILE: &str = "feedback.jsonl";
/// Rankings from `gptlab serve`, as every chosen/rejected pair they imply.
pub const PREFERENCES_FILE: &str = "preferences.jsonl";

// Files of a stage folder.
/// The model's weights (also the name in an exported HF folder).
pub const MODEL_FILE: &str = "model.safetensors";
/// The model's shape (also the name of an exported HF folder's config).
pub const CONFIG_FILE: &str = "config.json";
/// Everything an interrupted stage needs to continue; removed once the stage is done.
pub const RESUME_FILE: &str = "resume.safetensors";
/// One row per logged step ([`MetricsTable`]).
pub const METRICS_FILE: &str = "metrics.csv";
/// Written last: the stage is finished ([`StageMeta`]).
pub const DONE_FILE: &str = "done.json";

/// The page `gptlab compare` (and a sweep) writes into its output folder, and its Markdown twin.
pub const COMPARE_HTML: &str = "compare.html";
pub const COMPARE_MD: &str = "compare.md";

/// `<results root>/<experiment>/<run id>`.
pub fn run_dir(results_root: &Path, experiment: &str, run_id: &str) -> PathBuf {
    results_root.join(experiment).join(run_id)
}

/// A stage's `done.json`: it exists only once the stage has finished.
pub fn done_marker(stage_dir: &Path) -> PathBuf {
    stage_dir.join(DONE_FILE)
}

/// The run folder holding a stage folder (where the run's tokenizer lives).
pub fn run_of_stage(stage_dir: &Path) -> PathBuf {
    match stage_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
