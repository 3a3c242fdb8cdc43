//! `summary.json`: the final value of every metric of every stage, derived from the stages'
//! `metrics.csv` once a run has finished. This is the one place final metrics are worked out;
//! the report and sweeps read them back from here.

use super::metrics::read_metrics_csv;
use super::{read_meta, METRICS_FILE, SUMMARY_FILE};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// Stage → metric → last logged value.
pub type Summary = BTreeMap<String, BTreeMap<String, f64>>;

/// A stage's overall exact match on the `[report] eval` questions.
pub const EVAL_EXACT_MATCH: &str = "eval/exact_match";
/// Questions without a task are counted under this task name.
pub const NO_TASK: &str = "other";

/// The gold measures of `[report] eval`'s judge (see `eval::gold`): the judge's mean score of
/// a stage's sampled answers, and the reward model's mean score of the same answers (the
/// proxy), stored under each stage.
pub const GOLD_RATE: &str = "gold/rate";
pub const EVAL_REWARD: &str = "eval/reward";

/// The judge's win rate of a stage's answers against `baseline`'s; `/low` and `/high` follow
/// it with the bootstrap 95% interval.
pub fn gold_win_key(baseline: &str) -> String {
    format!("gold/win_vs/{baseline}")
}

/// The reward model's win rate of a stage's answers against `baseline`'s, on the same
/// answers and questions as the judge's (`gold_win_key`): gold and proxy on one scale.
pub fn proxy_win_key(baseline: &str) -> String {
    format!("proxy/win_vs/{baseline}")
}

/// Best-of-n by the reward model, n answers of the baseline sampled and the reward model's
/// favourite kept (stored under the baseline): the training-free reference for RLHF.
pub const BEST_OF: [usize; 3] = [1, 4, 16];

pub fn gold_best_of_key(n: usize) -> String {
    format!("gold/best_of_{n}")
}

/// What a stage's judged answers say (see `eval::diversity`): how many differ, the entropy of
/// their distribution in nats, and the share that contains each of the judge's terms.
pub const GOLD_DISTINCT: &str = "gold/distinct";
pub const GOLD_ENTROPY: &str = "gold/entropy";

pub fn gold_share_key(term: &str) -> String {
    format!("gold/share/{term}")
}

/// A stage's KL to `baseline` per answer, in nats.
pub fn kl_key(baseline: &str) -> String {
    format!("kl_vs/{baseline}")
}

/// The summary key of one task's exact match.
pub fn task_exact_match_key(task: &str) -> String {
    format!("eval/{task}/exact_match")
}

/// Writes `summary.json` from the metrics of `stages` (a stage without metrics is left out).
pub fn write_summary(run_dir: &Path, stages: &[String]) -> Result<()> {
    let mut summary = Summary::new();
    for s in stages {
        let path = run_dir.join(s).join(METRICS_FILE);
        if let Ok(table) = read_metrics_csv(&path) {
            let entry = summary.entry(s.clone()).or_default();
            for name in table.metric_names() {
                if let Some(v) = table.last(name) {
                    entry.insert(name.to_string(), v);
                }
            }
        }
    }
    crate::util::write_json_atomic(&run_dir.join(SUMMARY_FILE), &summary)
}

/// Adds `numbers` to `stage`'s entry of an existing `summary.json` (evaluations made after
/// training, e.g. `[report] eval`).
pub fn merge_into_summary(
    run_dir: &Path,
    stage: &str,
    numbers: BTreeMap<String, f64>,
) -> Result<()> {
    let mut summary = read_summary(run_dir)?;
    summary
        .entry(stage.to_string())
        .or_default()
        .extend(numbers);
    crate::util::write_json_atomic(&run_dir.join(SUMMARY_FILE), &summary)
}

/// `summary.json` as written; a missing file is an empty summary. JSON has no NaN, so a
/// non-finite final value was written as `null` and is left out here.
pub fn read_summary(run_dir: &Path) -> Result<Summary> {
    let path = run_dir.join(SUMMARY_FILE);
    let Some(text) = read_if_exists(&path)? else {
        return Ok(Summary::new());
    };
    let raw: BTreeMap<String, BTreeMap<String, Option<f64>>> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
    Ok(raw
        .into_iter()
        .map(|(stage, m)| {
            let values = m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
            (stage, values)
        })
        .collect())
}

fn read_if_exists(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
    }
}

/// A run's final metrics as `stage/metric`, stages in run order (meta.json), then any other
/// stage of the summary; empty when the run has no readable summary.
pub fn final_metrics(run_dir: &Path) -> Vec<(String, f64)> {
    let Ok(summary) = read_summary(run_dir) else {
        return Vec::new();
    };
    let mut stages: Vec<String> = read_meta(run_dir)
        .map(|m| m.stages.into_iter().map(|s| s.name).collect())
        .unwrap_or_default();
    for name in summary.keys() {
        if !stages.contains(name) {
            stages.push(name.clone());
        }
    }
    let mut out = Vec::new();
    for stage in &stages {
        if let Some(metrics) = summary.get(stage) {
            for (name, value) in metrics {
                out.push((format!("{stage}/{name}"), *value));
            }
        }
    }
    out
}
