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

/// The one base spec of the end-to-end tests: a nano model, a char tokenizer and a `base`
/// pretrain stage on the demo text. Each test changes what it needs with the methods below
/// and writes the result with [`write_spec`].
pub fn base_spec(name: &str) -> Spec {
    Spec {
        top: format!("name = \"{name}\"\n"),
        block_size: 32,
        data: r#"["{demo}/amusement_park.txt", "{demo}/corpus.txt"]"#.to_string(),
        base: String::new(),
        rest: String::new(),
    }
}

pub struct Spec {
    top: String,
    block_size: usize,
    data: String,
    base: String,
    rest: String,
}

impl Spec {
    /// Top-level keys besides the name (`seed = 7`).
    pub fn top(mut self, lines: &str) -> Spec {
        self.top += &with_newline(lines);
        self
    }

    pub fn block_size(mut self, block_size: usize) -> Spec {
        self.block_size = block_size;
        self
    }

    /// The `base` stage's `data` value, as TOML.
    pub fn data(mut self, toml: &str) -> Spec {
        self.data = toml.to_string();
        self
    }

    /// More keys of the `base` stage.
    pub fn base(mut self, lines: &str) -> Spec {
        self.base += &with_newline(lines);
        self
    }

    /// Tables after the `base` stage: more stages, `[report]`.
    pub fn then(mut self, tables: &str) -> Spec {
        self.rest += &with_newline(tables);
        self
    }

    pub fn text(&self) -> String {
        format!(
            "{}[model]\npreset = \"nano\"\nblock_size = {}\n[tokenizer]\nkind = \"char\"\nvocab_size = 512\n\
             [[stages]]\nname = \"base\"\nkind = \"pretrain\"\ndata = {}\n{}{}",
            self.top, self.block_size, self.data, self.base, self.rest
        )
    }
}

fn with_newline(lines: &str) -> String {
    let lines = lines.trim_start_matches('\n');
    match lines.ends_with('\n') {
        true => lines.to_string(),
        false => format!("{lines}\n"),
    }
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
