//! The corpora in `datasets/` are what a fresh clone runs on: every data path of every shipped
//! experiment and sweep is found there (without `$GPTLAB_DATA`), and every compressed corpus
//! still has the sha256 that `datasets/SHA256SUMS` and its folder's README give.

use std::path::{Path, PathBuf};

use gptlab::data::expand_paths;
use gptlab::data::open::read_data;
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every string in a TOML document that names a data file (`.txt` or `.jsonl`, maybe a glob):
/// `data`, `val_data`, `prompts`, `ptx_data`, the report's `data` and `judge_prompts`, and
/// whatever key comes next, without a list to keep up to date.
fn data_paths(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) if s.ends_with(".txt") || s.ends_with(".jsonl") => {
            out.push(s.clone())
        }
        toml::Value::Array(items) => items.iter().for_each(|v| data_paths(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| data_paths(v, out)),
        _ => {}
    }
}

/// `$DATA/...` under the clone's `datasets/` (the default data root), others relative to the
/// spec's folder; `@stage/...` files are written by the run itself.
fn resolve(spec: &Path, path: &str) -> Option<PathBuf> {
    if path.starts_with('@') {
        return None;
    }
    Some(match path.strip_prefix("$DATA/") {
        Some(rest) => repo().join("datasets").join(rest),
        None => spec.parent().unwrap().join(path),
    })
}

fn shipped_specs() -> Vec<PathBuf> {
    let mut specs = Vec::new();
    for pattern in ["experiments/*.toml", "experiments/sweeps/*.toml"] {
        let pattern = repo().join(pattern);
        specs.extend(
            glob::glob(pattern.to_str().unwrap())
                .unwrap()
                .map(Result::unwrap),
        );
    }
    specs
}

#[test]
fn every_shipped_experiment_finds_its_data_in_the_clone() {
    let specs = shipped_specs();
    assert!(specs.len() >= 10, "{specs:?}");
    let mut checked = 0;
    for spec in specs {
        let text = std::fs::read_to_string(&spec).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        let mut paths = Vec::new();
        data_paths(&value, &mut paths);
        for path in paths.iter().filter_map(|p| resolve(&spec, p)) {
            let files = expand_paths(std::slice::from_ref(&path));
            let files = files.unwrap_or_else(|e| panic!("{}: {e:#}", spec.display()));
            checked += files.len();
        }
        // A sweep's base experiment is shipped too.
        if let Some(base) = value.get("base").and_then(|b| b.as_str()) {
            let base = spec.parent().unwrap().join(base);
            assert!(
                base.is_file(),
                "{}: base {}",
                spec.display(),
                base.display()
            );
        }
    }
    assert!(
        checked >= 20,
        "only {checked} data files named: is the walk broken?"
    );
}

#[test]
fn every_compressed_corpus_has_its_recorded_sha256() {
    let root = repo().join("datasets");
    let sums = std::fs::read_to_string(root.join("SHA256SUMS")).unwrap();
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").expect("`HASH  NAME` lines");
        let bytes = read_data(&root.join(name)).unwrap();
        let actual = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(actual, hash, "{name}: content changed");
        let folder = Path::new(name).parent().unwrap();
        let readme = std::fs::read_to_string(root.join(folder).join("README.md")).unwrap();
        assert!(readme.contains(hash), "{name}: its README lacks {hash}");
        listed.push(format!("{name}.gz"));
    }
    let pattern = root.join("*/*.gz");
    let stored: Vec<String> = glob::glob(pattern.to_str().unwrap())
        .unwrap()
        .map(|p| {
            p.unwrap()
                .strip_prefix(&root)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    listed.sort();
    assert_eq!(stored, listed, "every .gz in datasets/ is in SHA256SUMS");
}
