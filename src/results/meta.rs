//! `meta.json` (the run) and `done.json` (a finished stage): one type each, written by the
//! runner and read by the report, sweeps and export. Every field has a default so that a
//! hand-written or older file still reads; the report treats a default as "not recorded".

use super::{done_marker, META_FILE};
use crate::spec::StageKind;
use anyhow::{Context, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::Path;

/// One finished stage: an entry of `meta.json`'s `stages`, and the whole of its `done.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StageMeta {
    pub name: String,
    /// None in a file that does not say (or names a kind this version does not know).
    #[serde(
        deserialize_with = "lenient_kind",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<StageKind>,
    pub steps: u64,
    pub tokens: u64,
    pub wall_s: f64,
    pub tok_per_sec: f64,
    /// For a stage trained on a weighted mixture: each source's share, size and passes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceUsage>,
    /// The hash of everything that decides this stage's output (the runner's identity.rs):
    /// a later run that needs a stage with the same identity takes this folder instead of
    /// training. None in folders written before identities were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Set when this run took the stage from an earlier run instead of training it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reused: Option<Reused>,
}

/// Where a reused stage came from, and how its files got here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reused {
    /// The run folder the stage was trained in (or taken into).
    pub run: String,
    /// `hard links` or `copies`.
    pub how: String,
}

/// How much a run drew from one source of a mixture.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceUsage {
    pub name: String,
    /// Share of the sampled windows (pretraining) or records.
    pub share: f64,
    /// Training size, in `unit`s.
    pub size: u64,
    /// `tokens` (pretraining) or `records`.
    pub unit: String,
    /// How many times the run reads the source over, on average.
    pub passes: f64,
}

/// The log lines that show a mixture before training.
pub fn usage_table(stage: &str, sources: &[SourceUsage]) -> String {
    let mut out = format!(
        "[{stage}] mixture: {:<20} {:>6} {:>12} {:>8}\n",
        "source", "share", "size", "passes"
    );
    for s in sources {
        out += &format!(
            "[{stage}]          {:<20} {:>6.3} {:>12} {:>8.2}\n",
            s.name,
            s.share,
            format!(
                "{} {}",
                s.size,
                if s.unit == "tokens" { "tok" } else { "rec" }
            ),
            s.passes
        );
    }
    out
}

/// `meta.json`: what ran, where, and whether it finished.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    pub name: String,
    pub run_id: String,
    pub started: String,
    pub finished: Option<String>,
    pub complete: bool,
    pub git_rev: String,
    pub host: String,
    pub device: String,
    pub preset: String,
    pub params: usize,
    pub vocab_size: usize,
    pub block_size: usize,
    pub stages: Vec<StageMeta>,
}

/// A run's `meta.json`, or None when it is missing or unreadable (a run not started yet).
pub fn read_meta(run_dir: &Path) -> Option<RunMeta> {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join(META_FILE)).ok()?).ok()
}

pub fn write_meta(run_dir: &Path, meta: &RunMeta) -> Result<()> {
    crate::util::write_json_atomic(&run_dir.join(META_FILE), meta)
}

/// A stage folder's `done.json`.
pub fn read_stage_record(stage_dir: &Path) -> Result<StageMeta> {
    let done = done_marker(stage_dir);
    let text = std::fs::read_to_string(&done)
        .with_context(|| format!("cannot read {}", done.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a stage record", done.display()))
}

/// Marks a stage finished.
pub fn write_stage_record(stage_dir: &Path, record: &StageMeta) -> Result<()> {
    crate::util::write_json_atomic(&done_marker(stage_dir), record)
}

/// `Some(v)` unless `v` is its type's default: what the report shows for a field that a
/// hand-written meta.json may leave out.
pub fn recorded<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

/// A stage kind, or None for one this version does not know (the rest of the file still
/// reads).
fn lenient_kind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StageKind>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}
