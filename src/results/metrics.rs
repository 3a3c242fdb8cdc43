//! `metrics.csv`: one row per logged step, header `step,tokens,<metric>,...`, empty cell = not
//! logged on that row. The reader feeds the charts; the writer is the trainer's metric sink.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The two columns every metrics file starts with.
pub const STEP: &str = "step";
pub const TOKENS: &str = "tokens";

/// A whole `metrics.csv` in memory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<f64>>>,
}

impl MetricsTable {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// `(x, y)` for every row where both columns hold a finite number.
    pub fn series(&self, x: &str, y: &str) -> Vec<(f64, f64)> {
        let (Some(xi), Some(yi)) = (self.column_index(x), self.column_index(y)) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|row| {
                match (
                    row.get(xi).copied().flatten(),
                    row.get(yi).copied().flatten(),
                ) {
                    (Some(xv), Some(yv)) if xv.is_finite() && yv.is_finite() => Some((xv, yv)),
                    _ => None,
                }
            })
            .collect()
    }

    /// The metric columns (everything but `step` and `tokens`) that hold at least one value.
    pub fn metric_names(&self) -> Vec<&str> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_str() != STEP && c.as_str() != TOKENS)
            .filter(|(i, _)| {
                self.rows
                    .iter()
                    .any(|r| r.get(*i).copied().flatten().is_some())
            })
            .map(|(_, c)| c.as_str())
            .collect()
    }

    /// The last value logged for a metric.
    pub fn last(&self, name: &str) -> Option<f64> {
        let i = self.column_index(name)?;
        self.rows
            .iter()
            .rev()
            .find_map(|r| r.get(i).copied().flatten())
    }
}

pub fn read_metrics_csv(path: &Path) -> Result<MetricsTable> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("cannot open metrics file {}", path.display()))?;
    let columns: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}:1: cannot read the header", path.display()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record =
            record.with_context(|| format!("{}:{line}: malformed CSV row", path.display()))?;
        let mut row = Vec::with_capacity(columns.len());
        for (cell, column) in record.iter().zip(&columns) {
            let cell = cell.trim();
            if cell.is_empty() {
                row.push(None);
                continue;
            }
            let value: f64 = cell.parse().with_context(|| {
                format!("{}:{line}: column `{column}`: expected a number or an empty cell, found `{cell}`", path.display())
            })?;
            row.push(Some(value));
        }
        rows.push(row);
    }
    Ok(MetricsTable { columns, rows })
}

/// Appends metric rows for one stage. New metric names may appear at any time, but a CSV header
/// is fixed once written, so all rows stay in memory and `flush` rewrites the file atomically.
pub struct MetricsWriter {
    path: PathBuf,
    table: MetricsTable,
    dirty: bool,
}

impl MetricsWriter {
    /// Starts a new file (replacing any old one) with `step,tokens` and then `columns`.
    pub fn create(path: &Path, columns: &[&str]) -> Result<Self> {
        let mut names = vec![STEP.to_string(), TOKENS.to_string()];
        for c in columns {
            if !names.iter().any(|n| n == c) {
                names.push(c.to_string());
            }
        }
        let mut writer = MetricsWriter {
            path: path.to_path_buf(),
            table: MetricsTable {
                columns: names,
                rows: Vec::new(),
            },
            dirty: true,
        };
        writer.flush()?;
        Ok(writer)
    }

    /// Continues a file written earlier (a resumed run).
    pub fn open_existing(path: &Path) -> Result<Self> {
        let table = read_metrics_csv(path)?;
        if table.columns.first().map(String::as_str) != Some(STEP)
            || table.columns.get(1).map(String::as_str) != Some(TOKENS)
        {
            bail!(
                "{}:1: expected the header to start with `step,tokens`, found `{}`",
                path.display(),
                table.columns.join(",")
            );
        }
        Ok(MetricsWriter {
            path: path.to_path_buf(),
            table,
            dirty: false,
        })
    }

    pub fn table(&self) -> &MetricsTable {
        &self.table
    }

    /// Records `values` at `step`. Values logged twice for the same step (train metrics, then
    /// eval metrics) land on one row, so the file keeps one row per logged step.
    pub fn log(&mut self, step: u64, tokens: u64, values: &[(&str, f64)]) -> Result<()> {
        let step_value = step as f64;
        let same_step = self.table.rows.last().and_then(|r| r[0]) == Some(step_value);
        if !same_step {
            let mut row = vec![None; self.table.columns.len()];
            row[0] = Some(step_value);
            self.table.rows.push(row);
        }
        let row_index = self.table.rows.len() - 1;
        self.table.rows[row_index][1] = Some(tokens as f64);
        for (name, value) in values {
            if *name == STEP || *name == TOKENS {
                bail!(
                    "metric name `{name}` is reserved for the first two columns of {}",
                    self.path.display()
                );
            }
            let column = match self.table.column_index(name) {
                Some(i) => i,
                None => {
                    self.table.columns.push(name.to_string());
                    for row in &mut self.table.rows {
                        row.push(None);
                    }
                    self.table.columns.len() - 1
                }
            };
            self.table.rows[row_index][column] = Some(*value);
        }
        self.dirty = true;
        Ok(())
    }

    /// Drops the rows logged after `step`: they belong to training that a resume redoes.
    pub fn truncate_after(&mut self, step: u64) {
        let before = self.table.rows.len();
        self.table
            .rows
            .retain(|r| r[0].is_none_or(|s| s <= step as f64));
        self.dirty |= self.table.rows.len() != before;
    }

    /// Rewrites the whole file atomically (temp file + rename).
    pub fn flush(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(&self.table.columns)?;
        for row in &self.table.rows {
            out.write_record(row.iter().map(|v| v.map(format_value).unwrap_or_default()))?;
        }
        let bytes = out.into_inner().context("cannot finish the CSV buffer")?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        crate::util::write_atomic(&self.path, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

impl Drop for MetricsWriter {
    /// Rows logged since the last flush would otherwise be lost when a stage returns early.
    fn drop(&mut self) {
        if self.dirty {
            if let Err(e) = self.flush() {
                eprintln!("warning: could not write {}: {e:#}", self.path.display());
            }
        }
    }
}

/// Shortest text that reads back to the same f64 (`100`, `0.001`, `NaN`).
fn format_value(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_extends_header_merges_steps_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base/metrics.csv");
        let mut w = MetricsWriter::create(&path, &["loss", "lr"]).unwrap();
        w.log(1, 64, &[("loss", 4.5), ("lr", 1e-3)]).unwrap();
        w.log(2, 128, &[("loss", 4.0), ("lr", 1e-3)]).unwrap();
        w.log(2, 128, &[("val/loss", 4.2)]).unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "step,tokens,loss,lr,val/loss\n1,64,4.5,0.001,\n2,128,4,0.001,4.2\n"
        );
        let t = read_metrics_csv(&path).unwrap();
        assert_eq!(t.series("step", "val/loss"), vec![(2.0, 4.2)]);
        assert_eq!(t.series("tokens", "loss"), vec![(64.0, 4.5), (128.0, 4.0)]);
        assert_eq!(t.metric_names(), vec!["loss", "lr", "val/loss"]);
        assert!(t.series("step", "missing").is_empty());
    }

    #[test]
    fn resume_truncates_rows_past_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        {
            let mut w = MetricsWriter::create(&path, &[]).unwrap();
            for s in 1..=5 {
                w.log(s, s * 10, &[("loss", 1.0 / s as f64)]).unwrap();
            }
        } // dropped: flushes
        let mut w = MetricsWriter::open_existing(&path).unwrap();
        assert_eq!(w.table().rows.len(), 5);
        w.truncate_after(3);
        w.log(4, 40, &[("loss", 0.3), ("grad_norm", 1.5)]).unwrap();
        w.flush().unwrap();
        let t = read_metrics_csv(&path).unwrap();
        assert_eq!(t.columns, vec!["step", "tokens", "loss", "grad_norm"]);
        assert_eq!(t.series("step", "loss").last(), Some(&(4.0, 0.3)));
        assert_eq!(t.rows.len(), 4);
    }

    #[test]
    fn bad_cell_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, "step,tokens,loss\n1,10,2.5\n2,20,abc\n").unwrap();
        let err = format!("{:#}", read_metrics_csv(&path).unwrap_err());
        assert!(
            err.contains("metrics.csv:3") && err.contains("`loss`") && err.contains("abc"),
            "{err}"
        );
    }

    #[test]
    fn open_existing_rejects_a_foreign_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, "loss,step\n1,2\n").unwrap();
        assert!(MetricsWriter::open_existing(&path).is_err());
    }
}
