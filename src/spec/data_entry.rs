//! A stage's `data` entries: plain paths and globs, or `{ path, weight, name, transform,
//! val_fraction }`
//! tables that make the data a weighted mixture of sources.
//!
//! `data = ["corpus/*.txt", { path = "anthologies.txt", weight = 0.3 }]`: a weighted entry
//! supplies its weight as a share of the sampled windows (pretraining) or records (SFT,
//! reward, DPO); the plain paths and globs together supply the rest, 1 - the weights, in
//! proportion to their sizes. With no plain entry the weights are shares of their own sum.
//! A weight of 0 keeps a source out of training (its validation loss is still measured).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// One entry of a stage's `data`: a path or glob, optionally weighted, named and transformed.
#[derive(Debug, Clone, PartialEq)]
pub struct DataEntry {
    pub path: PathBuf,
    pub weight: Option<f64>,
    pub name: Option<String>,
    pub transform: Option<Transform>,
    /// This source's held-out share, instead of the stage's `val_fraction` (0: train on all
    /// of it, e.g. text that the model should know by heart).
    pub val_fraction: Option<f64>,
}

/// A rewrite of a text source before training on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Each paragraph's clauses in reverse order (see `data::verse::reverse_clauses`).
    ReverseClauses,
    /// Every two neighbouring clauses on a line of their own, shuffled (`verse::clause_pairs`).
    ClausePairs,
    /// The same, of the reversed clauses.
    ReversedClausePairs,
}

impl DataEntry {
    pub fn plain(path: impl Into<PathBuf>) -> DataEntry {
        DataEntry {
            path: path.into(),
            weight: None,
            name: None,
            transform: None,
            val_fraction: None,
        }
    }

    /// Written as a table: it has a weight, a name or a transform.
    pub fn is_table(&self) -> bool {
        self.weight.is_some()
            || self.name.is_some()
            || self.transform.is_some()
            || self.val_fraction.is_some()
    }

    /// The name its metrics carry: `name`, else the file stem, else (for a glob such as
    /// `poems/*.txt`) its folder's name.
    pub fn source_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let stem = self.path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !stem.is_empty() && !stem.contains(['*', '?', '[']) {
            return stem.to_string();
        }
        let folder = self.path.parent().and_then(Path::file_name);
        folder
            .and_then(|f| f.to_str())
            .unwrap_or("data")
            .to_string()
    }
}

/// The entries as sources: each weighted entry is one; the plain entries together are one
/// more (named after its only entry, or `rest`). `None` when nothing is weighted: the stage
/// then reads all its data as one pool, as it always has.
pub fn sources_of(entries: &[DataEntry]) -> Option<Vec<Source>> {
    if entries.iter().all(|e| e.weight.is_none()) {
        return None;
    }
    let weighted: f64 = entries.iter().filter_map(|e| e.weight).sum();
    let plain: Vec<&DataEntry> = entries.iter().filter(|e| e.weight.is_none()).collect();
    let mut sources: Vec<Source> = entries
        .iter()
        .filter_map(|e| {
            e.weight.map(|w| Source {
                name: e.source_name(),
                share: if plain.is_empty() { w / weighted } else { w },
                paths: vec![e.path.clone()],
                transform: e.transform,
                val_fraction: e.val_fraction,
            })
        })
        .collect();
    if !plain.is_empty() {
        sources.push(Source {
            name: match plain.as_slice() {
                [one] => one.source_name(),
                _ => "rest".into(),
            },
            share: (1.0 - weighted).max(0.0),
            paths: plain.iter().map(|e| e.path.clone()).collect(),
            transform: None,
            val_fraction: None,
        });
    }
    Some(sources)
}

/// One source of a mixture: its files and its share of what training samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub share: f64,
    pub paths: Vec<PathBuf>,
    pub transform: Option<Transform>,
    pub val_fraction: Option<f64>,
}

// `data` entries are a string or a table; a string writes back as a string, so specs without
// weights keep their run ids.
impl Serialize for DataEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let path = self.path.to_string_lossy();
        if !self.is_table() {
            return s.serialize_str(&path);
        }
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("path", &path)?;
        if let Some(w) = self.weight {
            map.serialize_entry("weight", &w)?;
        }
        if let Some(n) = &self.name {
            map.serialize_entry("name", n)?;
        }
        if let Some(t) = &self.transform {
            map.serialize_entry("transform", t)?;
        }
        if let Some(f) = self.val_fraction {
            map.serialize_entry("val_fraction", &f)?;
        }
        map.end()
    }
}

/// A weighted source of a pretraining mixture (or a named part of a stage's data).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EntryTable {
    /// A data file or glob pattern, relative to the spec (or `$DATA/...`).
    path: PathBuf,
    /// This source's share of the training windows or examples.
    #[schemars(range(min = 0.0))]
    weight: Option<f64>,
    /// How `--set` and the metrics name this source (default: from its path).
    name: Option<String>,
    /// A rewrite of the text before training on it.
    transform: Option<Transform>,
    /// This source's held-out share, instead of the stage's `val_fraction`.
    #[schemars(range(min = 0.0, max = 0.5))]
    val_fraction: Option<f64>,
}

/// A stage's `data`: a path, a source table, or a list of either.
pub fn entries_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let table = generator.subschema_for::<EntryTable>();
    schemars::json_schema!({
        "anyOf": [
            { "type": "string" },
            table,
            { "type": "array", "items": { "anyOf": [{ "type": "string" }, table] } }
        ]
    })
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = DataEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a path, or a table { path = \"...\", weight = 0.3 }")
    }

    fn visit_str<E: de::Error>(self, path: &str) -> Result<DataEntry, E> {
        Ok(DataEntry::plain(path))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DataEntry, A::Error> {
        let t = EntryTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(DataEntry {
            path: t.path,
            weight: t.weight,
            name: t.name,
            transform: t.transform,
            val_fraction: t.val_fraction,
        })
    }
}

impl<'de> Deserialize<'de> for DataEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DataEntry, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weighted(path: &str, w: f64) -> DataEntry {
        DataEntry {
            weight: Some(w),
            ..DataEntry::plain(path)
        }
    }

    #[test]
    fn plain_entries_share_what_the_weights_leave() {
        let entries = [
            DataEntry::plain("corpus/*.txt"),
            weighted("corpus/anthologies.txt", 0.3),
            weighted("qa/sft.jsonl", 0.1),
        ];
        let sources = sources_of(&entries).unwrap();
        let named: Vec<(&str, f64)> = sources.iter().map(|s| (s.name.as_str(), s.share)).collect();
        assert_eq!(named[0], ("anthologies", 0.3));
        assert_eq!(named[1], ("sft", 0.1));
        assert_eq!(named[2].0, "corpus");
        assert!((named[2].1 - 0.6).abs() < 1e-12);
        assert!(sources_of(&[DataEntry::plain("a.txt")]).is_none());
    }

    #[test]
    fn weights_alone_are_shares_of_their_sum() {
        let sources = sources_of(&[weighted("a.txt", 3.0), weighted("b.txt", 1.0)]).unwrap();
        assert_eq!(sources[0].share, 0.75);
        assert_eq!(sources[1].share, 0.25);
    }

    #[test]
    fn entries_read_from_strings_and_tables_and_write_back_the_same_way() {
        #[derive(Deserialize, Serialize)]
        struct T {
            data: Vec<DataEntry>,
        }
        let text =
            r#"data = ["a.txt", { path = "b.txt", weight = 0.5, transform = "reverse_clauses" }]"#;
        let t: T = toml::from_str(text).unwrap();
        assert_eq!(t.data[0], DataEntry::plain("a.txt"));
        assert_eq!(t.data[1].weight, Some(0.5));
        assert_eq!(t.data[1].transform, Some(Transform::ReverseClauses));
        let back: T = toml::from_str(&toml::to_string(&t).unwrap()).unwrap();
        assert_eq!(back.data, t.data);
        let bad = toml::from_str::<T>(r#"data = [{ path = "b.txt", wieght = 0.5 }]"#);
        let err = bad.err().unwrap().to_string();
        assert!(err.contains("wieght") && err.contains("weight"), "{err}");
    }
}
