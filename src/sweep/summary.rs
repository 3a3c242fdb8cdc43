//! `summary.csv` (one row per point: the varied values, status, wall time, final metrics, run
//! folder, error), regenerated from the per-point status files under a lock and written
//! atomically, so any number of processes may update it and a reader never sees half a file.
//! Also the compact table `gptlab sweep` prints.

use super::points::OpenSweep;
use super::status::{PointStatus, State};
use crate::util::lock::FileLock;
use crate::util::write_atomic;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Fixed columns; the sweep's keys come after `point`, the metrics after `wall_s`.
const LEADING: [&str; 1] = ["point"];
const MIDDLE: [&str; 3] = ["status", "attempts", "wall_s"];
const TRAILING: [&str; 2] = ["run_dir", "error"];

/// Rewrites summary.csv from the status files; returns the statuses it was made from.
pub fn update_summary(open: &OpenSweep) -> Result<Vec<PointStatus>> {
    let _lock = FileLock::acquire(&open.dirs.lock())?;
    let statuses = open.statuses();
    let csv = summary_csv(open, &statuses)?;
    write_atomic(&open.dirs.summary_csv(), &csv)?;
    Ok(statuses)
}

/// The sweep's keys in file order (grid, then random).
pub fn varied_keys(open: &OpenSweep) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for resolved in &open.points {
        for (key, _) in &resolved.point.sets {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    keys
}

/// Every metric any point has, first-seen order (so stage order).
fn metric_columns(statuses: &[PointStatus]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for s in statuses {
        for (name, _) in &s.metrics {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn summary_csv(open: &OpenSweep, statuses: &[PointStatus]) -> Result<Vec<u8>> {
    let keys = varied_keys(open);
    let metrics = metric_columns(statuses);
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = LEADING
        .iter()
        .copied()
        .chain(keys.iter().map(String::as_str))
        .chain(MIDDLE)
        .chain(metrics.iter().map(String::as_str))
        .chain(TRAILING)
        .collect();
    writer.write_record(&header)?;
    for (resolved, status) in open.points.iter().zip(statuses) {
        let mut row = vec![status.index.to_string()];
        for key in &keys {
            let value = resolved.point.sets.iter().find(|(k, _)| k == key);
            row.push(value.map(|(_, v)| value_text(v)).unwrap_or_default());
        }
        row.push(status.state.as_str().to_string());
        row.push(status.attempts.to_string());
        row.push(status.wall_s.map(|w| format!("{w:.1}")).unwrap_or_default());
        for name in &metrics {
            let value = status.metrics.iter().find(|(n, _)| n == name);
            row.push(value.map(|(_, v)| format!("{v}")).unwrap_or_default());
        }
        row.push(
            status
                .run_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        );
        row.push(status.error.clone().unwrap_or_default());
        writer.write_record(&row)?;
    }
    writer
        .into_inner()
        .context("cannot finish the summary table")
}

/// A Markdown table: point, its label, status, wall time, each stage's final val/loss (or
/// loss), and the error of a failed point.
pub fn summary_table(statuses: &[PointStatus]) -> String {
    let metrics: Vec<String> = metric_columns(statuses)
        .into_iter()
        .filter(|m| m.ends_with("/val/loss") || m.ends_with("/val/accuracy"))
        .collect();
    let mut header = vec![
        "point".to_string(),
        "values".into(),
        "status".into(),
        "wall".into(),
    ];
    header.extend(metrics.iter().cloned());
    header.push("run / error".into());
    let mut out = format!("| {} |\n", header.join(" | "));
    out += &format!("|{}\n", "---|".repeat(header.len()));
    for s in statuses {
        let mut row = vec![
            s.index.to_string(),
            s.label.clone(),
            s.state.as_str().to_string(),
            s.wall_s.map(|w| format!("{w:.1}s")).unwrap_or_default(),
        ];
        for name in &metrics {
            let value = s.metrics.iter().find(|(n, _)| n == name);
            row.push(value.map(|(_, v)| format!("{v:.4}")).unwrap_or_default());
        }
        let last = match (&s.state, &s.error, &s.run_dir) {
            (State::Failed, Some(error), _) => short(error, 120),
            (_, _, Some(dir)) => dir.display().to_string(),
            _ => String::new(),
        };
        row.push(last.replace('|', "\\|"));
        out += &format!("| {} |\n", row.join(" | "));
    }
    out
}

fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max {
        line.to_string()
    } else {
        format!("{}...", line.chars().take(max).collect::<String>())
    }
}

/// Builds compare/ over the points that finished, once no point is still to run. Returns the
/// path of compare.html, or None when there is nothing (yet) to compare.
pub fn build_comparison(open: &OpenSweep) -> Result<Option<PathBuf>> {
    let _lock = FileLock::acquire(&open.dirs.lock())?;
    let statuses = open.statuses();
    if !statuses.iter().all(|s| s.state.is_settled()) {
        return Ok(None);
    }
    let mut runs: Vec<PathBuf> = Vec::new();
    for s in statuses.iter().filter(|s| s.state == State::Ok) {
        if let Some(dir) = &s.run_dir {
            if !runs.contains(dir) {
                runs.push(dir.clone());
            }
        }
    }
    if runs.is_empty() {
        return Ok(None);
    }
    // Keys with one value (a constant override such as fewer steps) say nothing.
    let keys: Vec<String> = varied_keys(open)
        .into_iter()
        .filter(|k| open.key_varies(k))
        .collect();
    let options = crate::report::CompareOptions {
        sort_by: None,
        keys: Some(&keys),
        metrics: &open.sweep.metrics,
    };
    crate::report::write_comparison_with(&runs, &open.dirs.compare(), &options).map(Some)
}
