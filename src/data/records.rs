//! The lowest layer of reading data files: a whole file as UTF-8, and JSONL files as one JSON
//! object per line with `file:line` in every error. Text corpora and the TRL-schema readers
//! are both built on it.

use std::path::Path;

use anyhow::bail;
use serde_json::{Map, Value};

use super::open::read_data;

/// One line of a JSONL file.
pub type Record = Map<String, Value>;

/// A whole file as UTF-8 (gunzipped if stored as `.gz`); invalid bytes are an error naming the line and byte offset.
pub fn read_utf8(path: &Path) -> anyhow::Result<String> {
    let bytes = read_data(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        anyhow::anyhow!(
            "{}:{line}: invalid UTF-8 at byte offset {offset}",
            path.display()
        )
    })
}

/// Parses every non-blank line of `path` as a JSON object and hands it to `parse`; errors
/// are prefixed with `file:line`.
pub fn for_each_record<T>(
    path: &Path,
    mut parse: impl FnMut(&Record) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let text = read_utf8(path)?;
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = parse_object(line).and_then(|record| parse(&record));
        match parsed {
            Ok(item) => out.push(item),
            Err(e) => bail!("{}:{}: {e:#}", path.display(), index + 1),
        }
    }
    if out.is_empty() {
        bail!(
            "{}: no records (the file is empty or has only blank lines)",
            path.display()
        );
    }
    Ok(out)
}

pub fn parse_object(line: &str) -> anyhow::Result<Record> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(record)) => Ok(record),
        Ok(other) => bail!("expected a JSON object, found {}", type_name(&other)),
        Err(e) => bail!("malformed JSON: {e}"),
    }
}

pub fn keys_of(record: &Record) -> String {
    let mut keys: Vec<&String> = record.keys().collect();
    keys.sort();
    format!("{keys:?}")
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
