//! `--set key=value` overrides, applied to the TOML document before it is deserialised so
//! that they go through exactly the same checks as values written in the file. Keys are
//! dotted paths and stages are addressed by name: `stages.base.lr=3e-4`, `model.preset=small`,
//! `report.sampling.temperature=0.5`, `seed=7`.

use std::path::Path;

use anyhow::anyhow;
use toml_edit::{DocumentMut, Item, TableLike, Value};

use super::data_entry::DataEntry;
use super::keys::{stage_key_problem, Child, Table};
use super::source::{canonical, Segment, StageTags};
use super::suggest;

/// An override that was applied: the argument as given and the canonical key it set
/// (`stages[0].lr`), so that errors about that key can name the argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedSet {
    pub arg: String,
    pub path: String,
}

/// Splits `key=value`; the value is read as a TOML value (`3e-4`, `true`, `[1, 2]`, `"x"`)
/// and otherwise taken as a plain string, so `model.preset=small` needs no quotes.
pub fn parse_set(arg: &str) -> anyhow::Result<(String, Value)> {
    let (key, raw) = arg.split_once('=').ok_or_else(|| {
        anyhow!("--set `{arg}`: expected key=value, for example `stages.base.lr=3e-4`")
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(anyhow!("--set `{arg}`: the key before `=` is empty"));
    }
    let raw = raw.trim();
    let value = raw.parse::<Value>().unwrap_or_else(|_| Value::from(raw));
    Ok((key.to_string(), value))
}

/// Applies every `--set` to `text`, keeping the rest of the document as written.
pub fn apply_sets(
    file: &Path,
    text: &str,
    sets: &[String],
) -> anyhow::Result<(String, Vec<AppliedSet>)> {
    if sets.is_empty() {
        return Ok((text.to_string(), Vec::new()));
    }
    let mut document: DocumentMut = text
        .parse()
        .map_err(|error| anyhow!("{}: malformed TOML: {error}", file.display()))?;
    let mut applied = Vec::new();
    for arg in sets {
        let (key, value) = parse_set(arg)?;
        let parts: Vec<&str> = key.split('.').collect();
        let mut segments = Vec::new();
        set_in(
            document.as_table_mut(),
            Table::Root,
            &parts,
            value,
            &mut segments,
        )
        .map_err(|message| anyhow!("{} (--set `{arg}`): {message}", file.display()))?;
        applied.push(AppliedSet {
            arg: arg.clone(),
            path: canonical(&segments),
        });
    }
    Ok((document.to_string(), applied))
}

/// Walks `parts` down from `table` (a table of kind `kind`) and stores `value` at the end.
/// Errors are messages; the caller adds the file and the argument.
fn set_in(
    table: &mut dyn TableLike,
    kind: Table,
    parts: &[&str],
    value: Value,
    segments: &mut Vec<Segment>,
) -> Result<(), String> {
    let (&key, rest) = parts.split_first().ok_or("the key is empty")?;
    if !kind.keys().contains(&key) {
        return Err(kind.unknown_key_message(key));
    }
    segments.push(Segment::Key(key.to_string()));
    if kind == Table::Stage && key == "data" && !rest.is_empty() {
        return set_data_entry(table, rest, value, segments);
    }
    match (kind.child(key), rest.is_empty()) {
        (None, true) => {
            set_value(table, key, value);
            Ok(())
        }
        (None, false) => Err(format!(
            "`{key}` holds a value, not a table, so `{key}.{}` does not exist",
            rest.join(".")
        )),
        (Some(Child::Table(inner)), true) => Err(format!(
            "`{key}` is a table; set one of its keys instead ({})",
            inner
                .keys()
                .iter()
                .map(|k| format!("`{key}.{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Some(Child::Table(inner)), false) => {
            if !table.contains_key(key) {
                table.insert(key, Item::Table(toml_edit::Table::new()));
            }
            let inner_table = table
                .get_mut(key)
                .and_then(|item| item.as_table_like_mut())
                .ok_or_else(|| format!("`{key}` in the file is not a table"))?;
            set_in(inner_table, inner, rest, value, segments)
        }
        (Some(Child::ListOf(Table::Stage)), _) => {
            let (&stage_name, rest) = rest.split_first().ok_or(
                "address a key of one stage by its name, for example `stages.base.lr=3e-4`",
            )?;
            if rest.is_empty() {
                return Err(format!(
                    "set a key of stage `{stage_name}`, for example `stages.{stage_name}.lr=3e-4`"
                ));
            }
            let (index, stage) = find_stage(table, stage_name)?;
            // A key no method takes is matched against this stage's method's keys; another
            // method's key is left for the check after all sets (one may change `algorithm`).
            if !Table::Stage.keys().contains(&rest[0]) {
                if let Some(message) = stage_key_problem(&StageTags::of(stage), rest[0]) {
                    return Err(message);
                }
            }
            segments.push(Segment::Index(index));
            set_in(stage, Table::Stage, rest, value, segments)
        }
        (Some(Child::ListOf(_)), true) => {
            set_value(table, key, value);
            Ok(())
        }
        (Some(Child::ListOf(_)), false) => Err(format!(
            "`{key}` is a list; set it as a whole, for example `{key}=[...]`"
        )),
        (Some(Child::MapOf(inner)), _) => set_named(table, key, inner, rest, value, segments),
    }
}

/// `judges.NAME.key=value`: one key of the entry `NAME` of a named map. Like stages, the
/// entry must already be in the file, so a misspelt name is an error and not a new entry.
fn set_named(
    table: &mut dyn TableLike,
    key: &str,
    inner: Table,
    rest: &[&str],
    value: Value,
    segments: &mut Vec<Segment>,
) -> Result<(), String> {
    let example = format!("for example `{key}.NAME.{}=...`", inner.keys()[0]);
    let [name, rest @ ..] = rest else {
        return Err(format!("address a key of one entry by its name, {example}"));
    };
    if rest.is_empty() {
        return Err(format!("set a key of `{key}.{name}`, {example}"));
    }
    let map = table.get_mut(key).and_then(|item| item.as_table_like_mut());
    let names: Vec<String> = map
        .as_ref()
        .map(|map| map.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default();
    let entry = map
        .and_then(|map| map.get_mut(name))
        .and_then(|item| item.as_table_like_mut());
    let Some(entry) = entry else {
        return Err(match names.is_empty() {
            true => format!("no `{key}.{name}`: the spec has no [{key}.NAME] tables"),
            false => format!(
                "no `{key}.{name}`; the {key} are {}{}",
                suggest::list(names.iter().map(String::as_str)),
                suggest::did_you_mean(name, names.iter().map(String::as_str))
            ),
        });
    };
    segments.push(Segment::Key(name.to_string()));
    set_in(entry, inner, rest, value, segments)
}

/// `stages.base.data.<source>.<key>=value`: one key of the data entry whose source name (its
/// `name`, else its file stem) is `<source>`, so a sweep can vary one source's weight.
fn set_data_entry(
    stage: &mut dyn TableLike,
    parts: &[&str],
    value: Value,
    segments: &mut Vec<Segment>,
) -> Result<(), String> {
    const KEYS: [&str; 5] = ["path", "weight", "name", "transform", "val_fraction"];
    let [source, key] = parts else {
        return Err("address one key of a data entry: `data.<source>.weight=0.3`".into());
    };
    if !KEYS.contains(key) {
        return Err(format!(
            "a data entry has no key `{key}`; its keys are {}{}",
            suggest::list(KEYS.iter().copied()),
            suggest::did_you_mean(key, KEYS.iter().copied())
        ));
    }
    let entries: Vec<&mut Value> = match stage.get_mut("data") {
        Some(Item::Value(Value::Array(array))) => array.iter_mut().collect(),
        Some(Item::Value(single)) => vec![single],
        _ => vec![],
    };
    let names: Vec<String> = entries.iter().map(|v| entry_name(v)).collect();
    let Some(index) = names.iter().position(|n| n == source) else {
        return Err(format!(
            "no data entry named `{source}`; the entries are {}{}",
            suggest::list(names.iter().map(String::as_str)),
            suggest::did_you_mean(source, names.iter().map(String::as_str))
        ));
    };
    let entry = entries
        .into_iter()
        .nth(index)
        .expect("index from the same list");
    if let Value::String(path) = entry {
        let mut table = toml_edit::InlineTable::new();
        table.insert("path", Value::from(path.value().as_str()));
        *entry = Value::InlineTable(table);
    }
    let table = entry
        .as_inline_table_mut()
        .ok_or("a data entry is a path or a table")?;
    segments.push(Segment::Index(index));
    segments.push(Segment::Key(key.to_string()));
    set_value(table, key, value);
    Ok(())
}

/// A data entry's source name as `DataEntry::source_name` gives it.
fn entry_name(value: &Value) -> String {
    let (path, name) = match value {
        Value::String(path) => (path.value().as_str(), None),
        Value::InlineTable(t) => (
            t.get("path").and_then(Value::as_str).unwrap_or(""),
            t.get("name").and_then(Value::as_str),
        ),
        _ => ("", None),
    };
    let entry = DataEntry {
        name: name.map(String::from),
        ..DataEntry::plain(path)
    };
    entry.source_name()
}

/// Replaces a value in place, keeping its spacing and trailing comment.
fn set_value(table: &mut dyn TableLike, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(item) => *item = Item::Value(value),
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

/// The stage table called `name`, with its position in `stages`.
fn find_stage<'t>(
    root: &'t mut dyn TableLike,
    name: &str,
) -> Result<(usize, &'t mut dyn TableLike), String> {
    let stages: Vec<&mut dyn TableLike> = match root.get_mut("stages") {
        Some(Item::ArrayOfTables(tables)) => {
            tables.iter_mut().map(|t| t as &mut dyn TableLike).collect()
        }
        Some(Item::Value(Value::Array(array))) => array
            .iter_mut()
            .filter_map(|value| value.as_inline_table_mut().map(|t| t as &mut dyn TableLike))
            .collect(),
        _ => Vec::new(),
    };
    let names: Vec<String> = stages
        .iter()
        .map(|stage| {
            stage
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    match names.iter().position(|n| n == name) {
        Some(index) => Ok((
            index,
            stages
                .into_iter()
                .nth(index)
                .expect("index from the same list"),
        )),
        None if names.is_empty() => Err(format!("no stage named `{name}`: the spec has no stages")),
        None => Err(format!(
            "no stage named `{name}`; the stages are {}{}",
            suggest::list(names.iter().map(String::as_str)),
            suggest::did_you_mean(name, names.iter().map(String::as_str))
        )),
    }
}

#[cfg(test)]
mod data_entry_tests {
    use super::*;

    #[test]
    fn a_data_entry_is_addressed_by_its_source_name() {
        let text = "[[stages]]\nname = \"base\"\nkind = \"pretrain\"\ndata = [\"a/*.txt\", { path = \"a/anthologies.txt\", weight = 0.3 }, \"qa.jsonl\"]\n";
        let sets = [
            "stages.base.data.anthologies.weight=0.5".to_string(),
            "stages.base.data.qa.weight=0.1".to_string(),
        ];
        let (out, applied) = apply_sets(Path::new("x.toml"), text, &sets).unwrap();
        assert!(
            out.contains("{ path = \"a/anthologies.txt\", weight = 0.5 }"),
            "{out}"
        );
        assert!(out.contains("weight = 0.1"), "{out}");
        assert_eq!(applied[0].path, "stages[0].data[1].weight");
        let bad = ["stages.base.data.anthology.weight=0.5".to_string()];
        let err = apply_sets(Path::new("x.toml"), text, &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean `anthologies`"), "{err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\" # the name\n\n[model]\npreset = \"nano\"\nblock_size = 64\n\n[[stages]]\nname = \"base\"\nlr = 1e-3   # peak\n\n[[stages]]\nname = \"sft\"\nlr = 1e-4\n";

    fn apply(sets: &[&str]) -> anyhow::Result<(String, Vec<AppliedSet>)> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        apply_sets(Path::new("t.toml"), TEXT, &sets)
    }

    #[test]
    fn values_parse_as_toml_with_a_string_fallback() {
        assert_eq!(parse_set("lr=3e-4").unwrap().1.as_float(), Some(3e-4));
        assert_eq!(parse_set("seed = 7").unwrap().1.as_integer(), Some(7));
        assert_eq!(parse_set("x=true").unwrap().1.as_bool(), Some(true));
        assert_eq!(
            parse_set("x=[1,2]").unwrap().1.as_array().map(|a| a.len()),
            Some(2)
        );
        assert_eq!(parse_set("x=\"a b\"").unwrap().1.as_str(), Some("a b"));
        assert_eq!(
            parse_set("model.preset=small").unwrap().1.as_str(),
            Some("small")
        );
        assert_eq!(
            parse_set("data=a/b.txt").unwrap().1.as_str(),
            Some("a/b.txt")
        );
        assert!(parse_set("novalue")
            .unwrap_err()
            .to_string()
            .contains("key=value"));
    }

    #[test]
    fn sets_a_stage_key_by_name_and_keeps_the_layout() {
        let (text, applied) = apply(&["stages.sft.lr=3e-4", "stages.base.lr=0.002"]).unwrap();
        assert!(text.contains("name = \"sft\"\nlr = 3e-4\n"), "{text}");
        assert!(text.contains("lr = 0.002   # peak\n"), "{text}");
        assert!(
            text.starts_with("name = \"x\" # the name\n\n[model]\n"),
            "{text}"
        );
        assert_eq!(
            applied[0],
            AppliedSet {
                arg: "stages.sft.lr=3e-4".into(),
                path: "stages[1].lr".into()
            }
        );
        assert_eq!(applied[1].path, "stages[0].lr");
    }

    #[test]
    fn sets_new_keys_and_tables() {
        let (text, applied) = apply(&[
            "model.preset=small",
            "seed=7",
            "report.sampling.temperature=0.5",
        ])
        .unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(value["model"]["preset"].as_str(), Some("small"));
        assert_eq!(value["seed"].as_integer(), Some(7));
        assert_eq!(
            value["report"]["sampling"]["temperature"].as_float(),
            Some(0.5)
        );
        assert_eq!(applied[2].path, "report.sampling.temperature");
    }

    #[test]
    fn sets_inside_inline_tables() {
        let text = "[report]\nsampling = { top_k = 5 }\n";
        let (text, _) = apply_sets(
            Path::new("t.toml"),
            text,
            &["report.sampling.top_p=0.9".into()],
        )
        .unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(value["report"]["sampling"]["top_k"].as_integer(), Some(5));
        assert_eq!(value["report"]["sampling"]["top_p"].as_float(), Some(0.9));
    }

    #[test]
    fn unknown_keys_are_errors_with_suggestions() {
        let error = apply(&["stages.base.lrr=1"]).unwrap_err().to_string();
        assert!(error.contains("t.toml"), "{error}");
        assert!(
            error.contains("t.toml (--set `stages.base.lrr=1`)"),
            "{error}"
        );
        assert!(error.contains("did you mean `lr`?"), "{error}");

        let error = apply(&["modle.preset=small"]).unwrap_err().to_string();
        assert!(error.contains("did you mean `model`?"), "{error}");

        // In a stage, only keys of its own method are suggested.
        let text = "[[stages]]\nname = \"a\"\nkind = \"pretrain\"\n";
        let set = |arg: &str| apply_sets(Path::new("t.toml"), text, &[arg.into()]);
        let error = set("stages.a.gama=1").unwrap_err().to_string();
        assert!(
            error.contains("unknown key `gama` in [[stages]] (pretrain)")
                && !error.contains("gamma"),
            "{error}"
        );
        assert!(
            set("stages.a.gamma=1").is_ok(),
            "left for the check after all sets"
        );
    }

    #[test]
    fn sets_a_judge_key_by_name() {
        let text = "[judges.polite]\nprefer = [\"请\"]   # manners\n";
        let set = |arg: &str| apply_sets(Path::new("t.toml"), text, &[arg.into()]);
        let (out, applied) = set("judges.polite.threshold=0.8").unwrap();
        assert!(out.contains("threshold = 0.8"), "{out}");
        assert_eq!(applied[0].path, "judges.polite.threshold");
        let (out, _) = set("judges.polite.prefer=谢谢").unwrap();
        assert!(out.contains("prefer = \"谢谢\"   # manners"), "{out}");
        let error = |arg: &str| set(arg).unwrap_err().to_string();
        assert!(
            error("judges=1").contains("`judges.NAME.prefer=...`"),
            "{}",
            error("judges=1")
        );
        assert!(error("judges.polite=1").contains("set a key of `judges.polite`"));
        let message = error("judges.polit.prefer=x");
        assert!(
            message.contains("no `judges.polit`; the judges are `polite`")
                && message.contains("did you mean `polite`?"),
            "{message}"
        );
        let message = error("judges.polite.avoi=x");
        assert!(message.contains("did you mean `avoid`?"), "{message}");
    }

    #[test]
    fn unknown_stage_lists_the_stages() {
        let error = apply(&["stages.bse.lr=1"]).unwrap_err().to_string();
        assert!(error.contains("no stage named `bse`"), "{error}");
        assert!(error.contains("`base`, `sft`"), "{error}");
        assert!(error.contains("did you mean `base`?"), "{error}");
    }

    #[test]
    fn tables_cannot_be_set_whole() {
        let error = apply(&["model=small"]).unwrap_err().to_string();
        assert!(error.contains("`model.preset`"), "{error}");
        let error = apply(&["stages.base=1"]).unwrap_err().to_string();
        assert!(error.contains("stages.base.lr"), "{error}");
        let error = apply(&["seed.x=1"]).unwrap_err().to_string();
        assert!(error.contains("holds a value"), "{error}");
    }
}
