//! Where each key of a spec file sits in the text, so that errors found long after parsing
//! (range checks, cross-stage references) can still point at `file:line:column`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, TableLike, Value};

/// One step of a key path: a table key or a position in an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// `stages[1].lr`: the canonical form used internally; stages are shown by name for users.
pub fn canonical(segments: &[Segment]) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Index(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// A key (or array element) found in the document.
#[derive(Debug, Clone)]
pub struct Entry {
    pub segments: Vec<Segment>,
    pub path: String,
    /// Where the key itself starts, used as the position reported for it.
    key_start: Option<usize>,
    /// The key and its value together, used to map a parser's error span back to a key.
    whole: Option<Range<usize>>,
}

/// The keys of one parsed TOML text with their positions.
#[derive(Debug, Clone)]
pub struct SourceIndex {
    pub file: PathBuf,
    text: String,
    entries: Vec<Entry>,
    stages: Vec<StageTags>,
}

/// The string values of a stage's `name`, `kind` and `algorithm`, where written as strings:
/// names for messages, kind and algorithm for the keys the stage accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageTags {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub algorithm: Option<String>,
    /// Every key's value as written (TOML text), to tell a default from a setting.
    pub values: std::collections::BTreeMap<String, String>,
    /// Every key written, in any form: a value, or tables such as `[[stages.data]]`.
    pub keys: std::collections::BTreeSet<String>,
}

impl SourceIndex {
    /// Parses `text`; malformed TOML is reported here, with its position.
    pub fn parse(file: &Path, text: &str) -> anyhow::Result<SourceIndex> {
        let document = ImDocument::parse(text.to_string()).map_err(|error| {
            let position = error
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            let message = error.message().trim().replace('\n', "; ");
            anyhow::anyhow!(
                "{}:{}:{}: malformed TOML: {message}",
                file.display(),
                position.0,
                position.1
            )
        })?;
        let mut entries = Vec::new();
        walk_table(document.as_table(), &[], &mut entries);
        let stages = stage_tags(document.as_table());
        Ok(SourceIndex {
            file: file.to_path_buf(),
            text: text.to_string(),
            entries,
            stages,
        })
    }

    /// Every key and array element, in document order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The tags of the stage at `index` of `stages`.
    pub fn stage(&self, index: usize) -> Option<&StageTags> {
        self.stages.get(index)
    }

    /// 1-based line and column of a canonical key, or of its nearest written ancestor (a
    /// missing `stages[1].data` points at that stage's `[[stages]]` header).
    pub fn position_of(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            let found = self.entries.iter().find(|entry| entry.path == path);
            if let Some(start) = found.and_then(|entry| entry.key_start) {
                return Some(line_col(&self.text, start));
            }
            path = parent_path(path)?;
        }
    }

    /// The innermost key whose text contains `span`: what a deserialisation error is about.
    /// An empty span (serde's "missing key" at the top level) belongs to no key.
    pub fn path_at(&self, span: Range<usize>) -> Option<&str> {
        if span.is_empty() {
            return None;
        }
        self.entries
            .iter()
            .filter_map(|entry| entry.whole.as_ref().map(|whole| (entry, whole)))
            .filter(|(_, whole)| whole.start <= span.start && span.end <= whole.end)
            .min_by_key(|(_, whole)| whole.end - whole.start)
            .map(|(entry, _)| entry.path.as_str())
    }

    /// Users know stages by name: `stages[1].lr` is shown as `stages.sft.lr`.
    pub fn display_path(&self, path: &str) -> String {
        if let Some(rest) = path.strip_prefix("stages[") {
            if let Some((index, tail)) = rest.split_once(']') {
                let name = index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
                    .and_then(|tags| tags.name.as_ref());
                if let Some(name) = name {
                    return format!("stages.{name}{tail}");
                }
            }
        }
        if path.is_empty() {
            "(top level)".to_string()
        } else {
            path.to_string()
        }
    }

    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, offset)
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> none.
pub fn parent_path(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn walk_table(table: &dyn TableLike, prefix: &[Segment], entries: &mut Vec<Entry>) {
    for (key, item) in table.iter() {
        let key_span = table.get_key_value(key).and_then(|(key, _)| key.span());
        // A `[table]` is reported at its header's `[`, any other key at the key itself.
        let header = match item {
            Item::Table(table) => table.span().map(|span| span.start),
            _ => None,
        };
        let mut segments = prefix.to_vec();
        segments.push(Segment::Key(key.to_string()));
        entries.push(Entry {
            path: canonical(&segments),
            key_start: header
                .or(key_span.as_ref().map(|span| span.start))
                .or(item.span().map(|s| s.start)),
            whole: union(key_span, item.span()),
            segments: segments.clone(),
        });
        walk_item(item, &segments, entries);
    }
}

fn walk_item(item: &Item, segments: &[Segment], entries: &mut Vec<Entry>) {
    match item {
        Item::Table(table) => walk_table(table, segments, entries),
        Item::ArrayOfTables(tables) => {
            for (index, table) in tables.iter().enumerate() {
                let mut element = segments.to_vec();
                element.push(Segment::Index(index));
                push_element(entries, &element, table.span());
                walk_table(table, &element, entries);
            }
        }
        Item::Value(value) => walk_value(value, segments, entries),
        Item::None => {}
    }
}

fn walk_value(value: &Value, segments: &[Segment], entries: &mut Vec<Entry>) {
    match value {
        Value::InlineTable(table) => walk_table(table, segments, entries),
        Value::Array(array) => {
            for (index, element) in array.iter().enumerate() {
                let mut path = segments.to_vec();
                path.push(Segment::Index(index));
                push_element(entries, &path, element.span());
                walk_value(element, &path, entries);
            }
        }
        _ => {}
    }
}

fn push_element(entries: &mut Vec<Entry>, segments: &[Segment], span: Option<Range<usize>>) {
    entries.push(Entry {
        segments: segments.to_vec(),
        path: canonical(segments),
        key_start: span.as_ref().map(|span| span.start),
        whole: span,
    });
}

fn union(a: Option<Range<usize>>, b: Option<Range<usize>>) -> Option<Range<usize>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.start.min(b.start)..a.end.max(b.end)),
        (a, b) => a.or(b),
    }
}

fn stage_tags(root: &dyn TableLike) -> Vec<StageTags> {
    match root.get("stages") {
        Some(Item::ArrayOfTables(tables)) => tables.iter().map(|t| StageTags::of(t)).collect(),
        Some(Item::Value(Value::Array(array))) => array
            .iter()
            .map(|value| {
                value
                    .as_inline_table()
                    .map(|t| StageTags::of(t))
                    .unwrap_or_default()
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl StageTags {
    /// The tags of one stage table.
    pub fn of(table: &dyn TableLike) -> StageTags {
        let text = |key| table.get(key).and_then(|v| v.as_str()).map(String::from);
        StageTags {
            name: text("name"),
            kind: text("kind"),
            algorithm: text("algorithm"),
            values: table
                .iter()
                .filter_map(|(key, item)| Some((key.to_string(), item.as_value()?.to_string())))
                .collect(),
            keys: table.iter().map(|(key, _)| key.to_string()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n\n[model]\npreset = \"nano\"\n\n[[stages]]\nname = \"base\"\nlr = 1e-3\n\n[[stages]]\nname = \"sft\"\nbetas = [0.9,\n  0.95]\n\n[report]\nsampling = { top_k = 5 }\n";

    fn index() -> SourceIndex {
        SourceIndex::parse(Path::new("t.toml"), TEXT).unwrap()
    }

    #[test]
    fn finds_keys_and_ancestors() {
        let index = index();
        assert_eq!(index.position_of("name"), Some((1, 1)));
        assert_eq!(index.position_of("model.preset"), Some((4, 1)));
        assert_eq!(index.position_of("model"), Some((3, 1)));
        assert_eq!(index.position_of("stages[0].lr"), Some((8, 1)));
        assert_eq!(index.position_of("stages[1].betas[1]"), Some((13, 3)));
        assert_eq!(index.position_of("report.sampling.top_k"), Some((16, 14)));
        // Missing keys point at the enclosing table.
        assert_eq!(index.position_of("stages[1].data"), Some((10, 1)));
        assert_eq!(index.position_of("nothing"), None);
    }

    #[test]
    fn maps_offsets_back_to_keys() {
        let index = index();
        let span_of = |needle: &str| {
            let start = TEXT.find(needle).unwrap();
            start..start + needle.len()
        };
        assert_eq!(index.path_at(span_of("1e-3")), Some("stages[0].lr"));
        assert_eq!(index.path_at(span_of("0.95")), Some("stages[1].betas[1]"));
        assert_eq!(index.path_at(span_of("[model]\npreset")), Some("model"));
        assert_eq!(
            index.path_at(span_of("[[stages]]\nname = \"sft\"")),
            Some("stages[1]")
        );
        assert_eq!(index.path_at(0..0), None);
    }

    #[test]
    fn shows_stages_by_name() {
        let index = index();
        assert_eq!(index.display_path("stages[1].lr"), "stages.sft.lr");
        assert_eq!(index.display_path("stages[7].lr"), "stages[7].lr");
        assert_eq!(index.display_path("model.preset"), "model.preset");
    }

    #[test]
    fn malformed_toml_names_the_position() {
        let error = SourceIndex::parse(Path::new("bad.toml"), "a = 1\nb = \n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("bad.toml:2:"), "{error}");
        assert!(error.contains("malformed TOML"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("香蕉 = 1\nab", "香蕉 = 1\na".len()), (2, 2));
        assert_eq!(line_col("香蕉", 3), (1, 2));
    }
}
