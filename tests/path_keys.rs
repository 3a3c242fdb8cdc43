//! Every file a spec names is read before anything trains. For each key the schema declares
//! as a path (`x-path`), a copy of `experiments/feedback.toml` (which has a stage of every
//! method and a `[report] eval`) points that key at a missing file, and `gptlab validate`,
//! which makes the checks `run` makes before training, refuses it naming the key and its
//! line. A path key added later is walked too, so it cannot slip past.

mod common;
use common::{gptlab, repo, tempdir, text};
use gptlab::spec::json_schema::experiment_schema;
use gptlab::spec::stage_keys::{flat_schema, is_path, takes};
use gptlab::spec::{Algorithm, StageKind};
use serde_json::Value;
use toml_edit::{value, DocumentMut};

/// The path keys of a table's schema properties.
fn path_keys(properties: &Value) -> Vec<String> {
    let properties = properties.as_object().expect("properties");
    let paths = properties.iter().filter(|(_, declared)| is_path(declared));
    paths.map(|(key, _)| key.clone()).collect()
}

/// Where each path key is written: (table path in the document, key).
fn declared_path_keys() -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    for key in path_keys(&flat_schema()["properties"]) {
        found.push((vec!["stages".to_string()], key));
    }
    let schema = experiment_schema(false);
    assert!(path_keys(&schema["properties"]).is_empty());
    for (name, definition) in schema["definitions"].as_object().unwrap() {
        let Some(properties) = definition.get("properties") else {
            continue;
        };
        if name == "FlatStage" {
            continue;
        }
        for key in path_keys(properties) {
            let table = match name.as_str() {
                "ReportEval" => vec!["report".to_string(), "eval".to_string()],
                other => panic!("say where a `{other}` table is written in a spec"),
            };
            found.push((table, key));
        }
    }
    found
}

/// The stage of `doc` a stage key is set in: the first that writes it already, else the
/// first whose method takes it.
fn stage_for(doc: &DocumentMut, key: &str) -> usize {
    let stages = doc["stages"].as_array_of_tables().unwrap();
    let method = |stage: &toml_edit::Table| {
        let kind = stage["kind"].as_str().unwrap();
        let kind: StageKind = serde_json::from_value(kind.into()).unwrap();
        let algorithm = stage.get("algorithm").and_then(|a| a.as_str());
        let algorithm: Option<Algorithm> =
            algorithm.map(|a| serde_json::from_value(a.into()).unwrap());
        (kind, algorithm)
    };
    let takes_it = |stage: &toml_edit::Table| {
        let (kind, algorithm) = method(stage);
        takes(key, kind, algorithm)
    };
    (stages
        .iter()
        .position(|s| takes_it(s) && s.contains_key(key)))
    .or_else(|| stages.iter().position(takes_it))
    .unwrap_or_else(|| panic!("no stage of feedback.toml takes `{key}`"))
}

/// `doc` with its base made a `pretrained` stage (whose `path` no other stage takes): the
/// checkpoint brings the tokenizer and preset, so those go.
fn with_pretrained_base(doc: &mut DocumentMut) {
    doc.remove("tokenizer");
    doc["model"].as_table_mut().unwrap().remove("preset");
    doc["stages"][0]["kind"] = value("pretrained");
}

#[test]
fn every_path_key_is_read_before_training() {
    let repo = repo();
    let datasets = format!("{}/datasets/", repo.display());
    let original = std::fs::read_to_string(repo.join("experiments/feedback.toml")).unwrap();
    let original = original.replace("../datasets/", &datasets);
    let keys = declared_path_keys();
    let names: Vec<&str> = keys.iter().map(|(_, key)| key.as_str()).collect();
    assert!(
        names.contains(&"ptx_data") && names.contains(&"judge_prompts"),
        "{names:?}"
    );
    let dir = tempdir();
    for (table, key) in keys {
        let mut doc: DocumentMut = original.parse().unwrap();
        let missing = format!("missing/{key}.jsonl");
        if key == "path" {
            with_pretrained_base(&mut doc);
        }
        let at = if table == ["stages"] {
            let index = stage_for(&doc, &key);
            let stage = &mut doc["stages"][index];
            let name = stage["name"].as_str().unwrap().to_string();
            stage[key.as_str()] = value(missing.as_str());
            format!("stages.{name}.{key}")
        } else {
            let mut item = doc.as_item_mut();
            for part in &table {
                item = &mut item[part.as_str()];
            }
            item[key.as_str()] = value(missing.as_str());
            format!("{}.{key}", table.join("."))
        };
        let written = doc.to_string();
        let spec = dir.path().join("spec.toml");
        std::fs::write(&spec, &written).unwrap();
        let line = 1 + written.lines().position(|l| l.contains(&missing)).unwrap();
        let output = gptlab(&["validate", spec.to_str().unwrap()], dir.path());
        let message = text(&output);
        assert!(
            !output.status.success(),
            "{at}: validate passed:\n{message}"
        );
        assert!(
            message.contains(&format!("spec.toml:{line}:"))
                && message.contains(&format!("`{at}`"))
                && message.contains(&missing),
            "{at} (line {line}): {message}"
        );
    }
}
