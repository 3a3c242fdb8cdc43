//! A stage's identity: a hash of everything that decides what the stage writes, so that a run
//! can take a finished stage from any earlier run instead of training it again (`reuse.rs`).
//!
//! What counts, for each stage:
//! - the run-level inputs every stage reads: the program version, device and kernels
//!   (`GPTLAB_KERNELS`), seed, model shape,
//!   tokenizer settings and the trained tokenizer itself (it is trained on every stage's data,
//!   so a later stage's new data that adds a character changes every stage's identity);
//! - the stage's own keys as resolved (its name included: it seeds the stage's random stream);
//! - for every key that names a file or glob, the contents of the files it matches;
//! - for a pretrained stage's folder, the content hash of its files (not its path);
//! - for every key that names another stage (`from`, `reward_model`, `@stage/...` ratings),
//!   that stage's identity, so a change reaches every stage after it;
//! - for every key that names a judge, the judge's rules.
//!
//! The stage's keys are walked as data, not listed by hand, so a key added later is counted
//! without anyone remembering to: a missed reuse costs minutes, a false one a wrong result.
//! Nothing of `[report]` counts: the report is made after the stages, from their folders.

use crate::spec::{rating_path, Experiment, Stage};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Changed whenever the meaning of an identity changes, so old records stop matching.
const IDENTITY_VERSION: &str = "gptlab stage identity 1";

/// Each stage's identity, in spec order. `tokenizer` is the run's trained tokenizer file.
pub fn stage_identities(spec: &Experiment, tokenizer: &Path) -> Result<Vec<String>> {
    // A pretrained stage's folder counts by its content, not its path.
    let hashed = crate::spec::pretrained::with_content_hashes(spec)
        .context("cannot read the pretrained checkpoint")?;
    let spec = hashed.as_ref().unwrap_or(spec);
    let run = run_inputs(spec, tokenizer)?;
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    let mut ids = Vec::new();
    for stage in &spec.stages {
        let id = stage_identity(spec, stage, &run, &known)
            .with_context(|| format!("the identity of stage `{}`", stage.name))?;
        known.insert(stage.name.clone(), id.clone());
        ids.push(id);
    }
    Ok(ids)
}

/// What every stage of the run reads besides its own keys.
fn run_inputs(spec: &Experiment, tokenizer: &Path) -> Result<Value> {
    let tokenizer_bytes =
        std::fs::read(tokenizer).with_context(|| format!("cannot read {}", tokenizer.display()))?;
    Ok(json!({
        "version": IDENTITY_VERSION,
        "gptlab": env!("CARGO_PKG_VERSION"),
        "device": spec.device,
        // The composed ops sum in another order than the fused CPU kernels: close, not equal.
        "kernels": if crate::model::kernels::portable::portable() { "portable" } else { "fused" },
        "seed": spec.seed,
        "model": spec.model,
        "tokenizer": spec.tokenizer,
        "tokenizer_file": sha256_hex(&tokenizer_bytes),
    }))
}

/// The hash of the run's inputs, the stage's keys and what each key names.
fn stage_identity(
    spec: &Experiment,
    stage: &Stage,
    run: &Value,
    earlier: &BTreeMap<String, String>,
) -> Result<String> {
    let keys = serde_json::to_value(stage).context("cannot write the stage's keys")?;
    let mut named = BTreeMap::new();
    let mut strings = Vec::new();
    collect_strings(&keys, &mut strings);
    for text in strings {
        if text == stage.name {
            continue;
        }
        if let Some((from, _)) = rating_path(Path::new(&text)) {
            let Some(id) = earlier.get(from) else {
                bail!("`{text}` names no earlier stage");
            };
            named.insert(text.clone(), id.clone());
        } else if let Some(id) = earlier.get(&text) {
            named.insert(format!("stage {text}"), id.clone());
        } else if let Some(judge) = spec.judges.get(&text) {
            named.insert(format!("judge {text}"), serde_json::to_string(judge)?);
        } else if Path::new(&text).is_absolute() {
            // A path whose files cannot be read gives an identity nothing else has: the stage
            // is never taken from, or for, another run.
            let hash = files_hash(Path::new(&text)).unwrap_or_else(|e| unique(&e));
            named.insert(format!("files {text}"), hash);
        }
    }
    let all = json!({ "run": run, "stage": keys, "named": named });
    Ok(sha256_hex(serde_json::to_string(&all)?.as_bytes()))
}

/// Every string in a JSON value, keys of objects aside.
fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// The contents of every file a path or glob matches, in the order the data reader reads
/// them.
fn files_hash(pattern: &Path) -> Result<String> {
    let files = crate::data::expand_paths(&[pattern.to_path_buf()])?;
    let mut hasher = Sha256::new();
    for file in files {
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        hasher.update(Sha256::digest(&bytes));
    }
    Ok(hex(&hasher.finalize()))
}

fn unique(error: &anyhow::Error) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let nanos = now.map_or(0, |d| d.as_nanos());
    format!("unreadable ({error:#}) {nanos} {}", std::process::id())
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{load_spec, LoadOptions};

    const SPEC: &str = r#"
name = "ids"
[model]
preset = "nano"
block_size = 32
[tokenizer]
kind = "char"
vocab_size = 512
[[stages]]
name = "base"
kind = "pretrain"
data = "corpus.txt"
steps = 2
[[stages]]
name = "tuned"
kind = "pretrain"
from = "base"
data = "other.txt"
steps = 2
"#;

    fn ids(dir: &Path, sets: &[&str]) -> Vec<String> {
        let opts = LoadOptions {
            sets: sets.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let loaded = load_spec(&dir.join("spec.toml"), &opts).unwrap();
        stage_identities(&loaded.spec, &dir.join("tokenizer.json")).unwrap()
    }

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.toml"), SPEC).unwrap();
        std::fs::write(dir.path().join("corpus.txt"), "abc").unwrap();
        std::fs::write(dir.path().join("other.txt"), "abd").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        dir
    }

    #[test]
    fn a_change_reaches_its_stage_and_every_stage_after_it() {
        let dir = project();
        let first = ids(dir.path(), &[]);
        assert_eq!(
            first,
            ids(dir.path(), &[]),
            "the same inputs, the same identities"
        );
        assert_ne!(first[0], first[1]);
        let later = ids(dir.path(), &["stages.tuned.lr=1e-4"]);
        assert_eq!(later[0], first[0]);
        assert_ne!(later[1], first[1]);
        let earlier = ids(dir.path(), &["stages.base.lr=1e-4"]);
        assert_ne!(earlier[0], first[0]);
        assert_ne!(earlier[1], first[1], "`from` carries the change on");
        assert_ne!(ids(dir.path(), &["seed=7"])[0], first[0]);
        assert_ne!(ids(dir.path(), &["model.block_size=16"])[0], first[0]);
        assert_eq!(ids(dir.path(), &["report.sampling.temperature=0.5"]), first);
    }

    #[test]
    fn a_pretrained_folder_counts_by_its_content_not_its_path() {
        let dir = project();
        let spec = SPEC.replace(
            "name = \"base\"\nkind = \"pretrain\"\ndata = \"corpus.txt\"",
            "name = \"base\"\nkind = \"pretrained\"\npath = \"ckpt\"",
        );
        let spec = spec.replace("[tokenizer]\nkind = \"char\"\nvocab_size = 512\n", "");
        let spec = spec.replace("preset = \"nano\"\n", "");
        std::fs::write(dir.path().join("spec.toml"), spec).unwrap();
        let ckpt = dir.path().join("ckpt");
        std::fs::create_dir(&ckpt).unwrap();
        std::fs::write(ckpt.join("config.json"), "{}").unwrap();
        std::fs::write(ckpt.join("model.safetensors"), "weights").unwrap();
        let first = ids(dir.path(), &[]);
        std::fs::rename(&ckpt, dir.path().join("moved")).unwrap();
        let moved = ids(dir.path(), &["stages.base.path=moved"]);
        assert_eq!(moved, first, "the same content elsewhere");
        std::fs::write(dir.path().join("moved/model.safetensors"), "weighty").unwrap();
        let changed = ids(dir.path(), &["stages.base.path=moved"]);
        assert!(changed.iter().zip(&first).all(|(a, b)| a != b));
    }

    #[test]
    fn file_contents_and_the_tokenizer_count() {
        let dir = project();
        let first = ids(dir.path(), &[]);
        std::fs::write(dir.path().join("other.txt"), "abe").unwrap();
        let edited = ids(dir.path(), &[]);
        assert_eq!(edited[0], first[0]);
        assert_ne!(edited[1], first[1], "same path, new content");
        std::fs::write(dir.path().join("tokenizer.json"), "{ }").unwrap();
        let retokenized = ids(dir.path(), &[]);
        assert!(retokenized.iter().zip(&edited).all(|(a, b)| a != b));
    }
}
