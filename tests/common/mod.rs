//! Helpers for end-to-end tests: run the real `gptlab` binary on specs written to a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared corpora, if present (`$GPTLAB_DATA`, else `../shared/datasets`).
pub fn shared_data() -> Option<PathBuf> {
    let p = std::env::var_os("GPTLAB_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/datasets"));
    p.join("tinyshakespeare").is_dir().then_some(p)
}

pub fn gptlab(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gptlab"))
        .args(args)
        .current_dir(cwd)
        .env("GPTLAB_RESULTS", cwd.join("results"))
        .output()
        .expect("gptlab runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run folder a successful `gptlab run` printed last.
pub fn run_dir(o: &Output) -> PathBuf {
    assert!(o.status.success(), "gptlab failed:\n{}", text(o));
    let out = String::from_utf8_lossy(&o.stdout);
    PathBuf::from(out.lines().last().expect("output").trim())
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Writes `spec` (with `{demo}` replaced by the demo data folder) to `dir/name`.
pub fn write_spec(dir: &Path, name: &str, spec: &str) -> PathBuf {
    let p = dir.join(name);
    let demo = repo().join("datasets/demo");
    std::fs::write(&p, spec.replace("{demo}", demo.to_str().unwrap())).unwrap();
    p
}

pub fn read_metric(csv_path: &Path, column: &str) -> Vec<f64> {
    let mut r = csv::Reader::from_path(csv_path).unwrap();
    let headers = r.headers().unwrap().clone();
    let i = headers
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {headers:?}"));
    r.records()
        .filter_map(|rec| rec.unwrap().get(i).and_then(|v| v.parse().ok()))
        .collect()
}
