//! The tables of a spec and the keys each accepts, used to reject unknown keys (with a
//! suggestion) before serde sees them, and to check `--set` paths. The key lists come from
//! the serde structs themselves, so they cannot drift from `schema.rs`. A stage accepts the
//! keys of the method its `kind` and `algorithm` select (each key's declaration in `flat.rs`
//! says which, read in `stage_keys.rs`), so a misspelt key is matched against that method's
//! keys, and another method's key is named as such.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::flat::FlatStage;
use super::kinds::{Algorithm, StageKind};
use super::lora::LoraKeys;
use super::schema::{
    Experiment, JudgeSpec, ModelSpec, Probe, ReportEval, ReportSpec, Sampling, TokenizerSpec,
};
use super::source::{Segment, SourceIndex, StageTags};
use super::stage::{method_name, methods};
use super::stage_keys::takes;
use super::suggest;

/// A kind of table in the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Root,
    Model,
    Tokenizer,
    Stage,
    Report,
    Sampling,
    Probe,
    Eval,
    Judge,
    Lora,
}

/// What a key of a table holds, where that matters for walking paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    Table(Table),
    ListOf(Table),
    /// A table whose keys are names the spec chooses (`[judges.NAME]`), each a table of
    /// this kind.
    MapOf(Table),
}

impl Table {
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Table::Root => field_names::<Experiment<FlatStage>>(),
            Table::Model => field_names::<ModelSpec>(),
            Table::Tokenizer => field_names::<TokenizerSpec>(),
            // Every method's keys: which of them a stage takes is checked per stage.
            Table::Stage => field_names::<FlatStage>(),
            Table::Report => field_names::<ReportSpec>(),
            Table::Sampling => field_names::<Sampling>(),
            Table::Probe => field_names::<Probe>(),
            Table::Eval => field_names::<ReportEval>(),
            Table::Judge => field_names::<JudgeSpec>(),
            Table::Lora => field_names::<LoraKeys>(),
        }
    }

    /// How the table is written in a spec, for messages.
    pub fn header(self) -> &'static str {
        match self {
            Table::Root => "the top level",
            Table::Model => "[model]",
            Table::Tokenizer => "[tokenizer]",
            Table::Stage => "[[stages]]",
            Table::Report => "[report]",
            Table::Sampling => "report.sampling",
            Table::Probe => "report.probes",
            Table::Eval => "report.eval",
            Table::Judge => "[judges.NAME]",
            Table::Lora => "a stage's lora",
        }
    }

    pub fn child(self, key: &str) -> Option<Child> {
        match (self, key) {
            (Table::Root, "model") => Some(Child::Table(Table::Model)),
            (Table::Root, "tokenizer") => Some(Child::Table(Table::Tokenizer)),
            (Table::Root, "stages") => Some(Child::ListOf(Table::Stage)),
            (Table::Root, "report") => Some(Child::Table(Table::Report)),
            (Table::Report, "sampling") => Some(Child::Table(Table::Sampling)),
            (Table::Report, "probes") => Some(Child::ListOf(Table::Probe)),
            (Table::Report, "eval") => Some(Child::Table(Table::Eval)),
            (Table::Root, "judges") => Some(Child::MapOf(Table::Judge)),
            (Table::Stage, "lora") => Some(Child::Table(Table::Lora)),
            _ => None,
        }
    }

    /// "unknown key `lrr` in [[stages]]; did you mean `lr`?" (or the valid keys when none
    /// is close).
    pub fn unknown_key_message(self, key: &str) -> String {
        unknown_key_message(key, self.header(), self.keys())
    }
}

fn unknown_key_message(key: &str, header: &str, keys: &[&str]) -> String {
    let keys = keys.iter().copied();
    match suggest::closest(key, keys.clone()) {
        Some(near) => format!("unknown key `{key}` in {header}; did you mean `{near}`?"),
        None => format!(
            "unknown key `{key}` in {header}; expected one of {}",
            suggest::list(keys)
        ),
    }
}

/// The keys a stage of this kind and algorithm takes, in the flat form's order; `None`
/// when they select no method.
pub fn method_keys(kind: StageKind, algorithm: Option<Algorithm>) -> Option<Vec<&'static str>> {
    let keys = Table::Stage.keys().iter().copied();
    (methods().contains(&(kind, algorithm)))
        .then(|| keys.filter(|key| takes(key, kind, algorithm)).collect())
}

/// The first key of the document that no table accepts, as (canonical path, message).
pub fn find_unknown_key(index: &SourceIndex) -> Option<(String, String)> {
    index.entries().iter().find_map(|entry| {
        let message = match check_stage_key(index, &entry.segments) {
            Some(checked) => checked.err(),
            None => {
                unknown_in_path(&entry.segments).map(|(table, key)| table.unknown_key_message(&key))
            }
        };
        message.map(|message| (entry.path.clone(), message))
    })
}

/// For a key written directly in a stage whose `kind` and `algorithm` select a method: is it
/// one of that method's keys? `None` for every other key (and for stages whose method is
/// not known yet: serde and validation report a wrong `kind` or `algorithm`).
fn check_stage_key(index: &SourceIndex, segments: &[Segment]) -> Option<Result<(), String>> {
    let [Segment::Key(table), Segment::Index(position), Segment::Key(key)] = segments else {
        return None;
    };
    if table != "stages" {
        return None;
    }
    let tags = index.stage(*position)?;
    method_of(tags)?;
    Some(match stage_key_problem(tags, key) {
        Some(message) => Err(message),
        None => Ok(()),
    })
}

/// Why the stage tagged `tags` does not take `key`: another method's key names the methods
/// that take it, an unknown one the nearest of this method's keys. `None` when the stage
/// takes the key, or when its method is not known.
pub fn stage_key_problem(tags: &StageTags, key: &str) -> Option<String> {
    let (kind, algorithm) = method_of(tags)?;
    let keys = method_keys(kind, algorithm)?;
    if keys.contains(&key) {
        return None;
    }
    let name = method_name(kind, algorithm);
    let owners: Vec<(StageKind, Option<Algorithm>)> = methods()
        .into_iter()
        .filter(|&(k, a)| takes(key, k, a))
        .collect();
    if owners.is_empty() {
        let header = format!("[[stages]] ({name})");
        return Some(unknown_key_message(key, &header, &keys));
    }
    // A run's resolved spec.toml writes every method's keys at their defaults; such a key
    // changes nothing, so the file loads again as it was saved. Only a stage written out in
    // full, as spec.toml writes it, is such a file: in a hand-written stage the key is an
    // error whatever its value.
    if written_in_full(tags, kind)
        && (tags.values.get(key)).is_some_and(|written| is_default_value(kind, key, written))
    {
        return None;
    }
    // No "did you mean": the key is spelt right, it belongs to another method (`beta` on a
    // PPO stage is DPO's, not a misspelt `betas`).
    Some(format!(
        "`{key}` is only used by {}, not by a {name} stage",
        owners_phrase(&owners)
    ))
}

/// "rlhf stages with algorithm `ppo` or `grpo`, and feedback stages": the methods that take
/// a key, named by what selects them (an algorithm is not a stage kind).
fn owners_phrase(owners: &[(StageKind, Option<Algorithm>)]) -> String {
    let algorithms: Vec<String> = owners
        .iter()
        .filter_map(|(_, algorithm)| algorithm.map(|a| format!("`{}`", a.as_str())))
        .collect();
    let mut parts = Vec::new();
    if !algorithms.is_empty() {
        parts.push(format!(
            "rlhf stages with algorithm {}",
            algorithms.join(" or ")
        ));
    }
    let kinds: Vec<String> = owners
        .iter()
        .filter(|(_, algorithm)| algorithm.is_none())
        .map(|(kind, _)| format!("{} stages", kind.as_str()))
        .collect();
    parts.extend(kinds);
    parts.join(", and ")
}

/// Whether the stage writes every key a run's resolved spec.toml writes for its kind (`data`
/// may be written as `[[stages.data]]` tables, so any form counts).
fn written_in_full(tags: &StageTags, kind: StageKind) -> bool {
    let Ok(resolved) = toml::Table::try_from(FlatStage::new("x", kind)) else {
        return false;
    };
    resolved.keys().all(|key| tags.keys.contains(key))
}

/// Whether `written` (a TOML value's text) is `key`'s default in a stage of `kind`.
fn is_default_value(kind: StageKind, key: &str, written: &str) -> bool {
    let parsed: Option<toml::Table> = toml::from_str(&format!("v = {written}")).ok();
    let default = toml::Table::try_from(FlatStage::new("x", kind)).ok();
    match (parsed, default) {
        (Some(parsed), Some(default)) => parsed.get("v") == default.get(key),
        _ => false,
    }
}

/// The method a stage's written `kind` and `algorithm` select, if they select one.
fn method_of(tags: &StageTags) -> Option<(StageKind, Option<Algorithm>)> {
    methods().into_iter().find(|(kind, algorithm)| {
        tags.kind.as_deref() == Some(kind.as_str())
            && tags.algorithm.as_deref() == algorithm.map(|a| a.as_str())
    })
}

/// Walks a key path through the tables; returns the table and key that do not fit. Paths
/// into values that are not tables (a table written where a number belongs) are left to
/// serde, which reports them as type errors.
fn unknown_in_path(segments: &[Segment]) -> Option<(Table, String)> {
    let mut table = Table::Root;
    let mut rest = segments.iter();
    while let Some(segment) = rest.next() {
        let Segment::Key(key) = segment else {
            return None;
        };
        if !table.keys().contains(&key.as_str()) {
            return Some((table, key.clone()));
        }
        match table.child(key) {
            Some(Child::Table(inner)) => table = inner,
            Some(Child::ListOf(inner)) => {
                let Some(Segment::Index(_)) = rest.next() else {
                    return None;
                };
                table = inner;
            }
            Some(Child::MapOf(inner)) => {
                // The next key is a name the spec chose; the one after it is checked.
                let Some(Segment::Key(_)) = rest.next() else {
                    return None;
                };
                table = inner;
            }
            None => return None,
        }
    }
    None
}

/// The field names serde-derive passes to `deserialize_struct`, captured by a deserializer
/// that does nothing else.
fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldCapture(&mut fields));
    fields
}

struct FieldCapture<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldCapture<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs have field names"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn key_lists_come_from_the_structs() {
        assert_eq!(Table::Model.keys(), &["preset", "block_size"]);
        assert!(Table::Stage.keys().contains(&"warmup_steps"));
        assert!(Table::Stage.keys().contains(&"temperature"));
        // 45, and the test-only `toy_margin`.
        assert_eq!(Table::Stage.keys().len(), 46);
        // Every key of the flat form belongs to some method, and no method lists a key twice.
        for key in Table::Stage.keys() {
            assert!(
                methods()
                    .into_iter()
                    .any(|(k, a)| method_keys(k, a).unwrap().contains(key)),
                "{key} belongs to no method"
            );
        }
        let dpo = method_keys(StageKind::Rlhf, Some(Algorithm::Dpo)).unwrap();
        assert!(dpo.contains(&"beta") && dpo.contains(&"ptx_coef") && dpo.contains(&"lr"));
        assert!(!dpo.contains(&"gamma") && !dpo.contains(&"judge"));
        assert_eq!(method_keys(StageKind::Rlhf, None), None);
        assert!(Table::Root.keys().contains(&"report"));
        assert_eq!(Table::Sampling.keys().len(), 5);
    }

    #[test]
    fn finds_unknown_keys_with_suggestions() {
        let text = "name = \"x\"\n[[stages]]\nname = \"base\"\nlrr = 1\n";
        let index = SourceIndex::parse(Path::new("t.toml"), text).unwrap();
        let (path, message) = find_unknown_key(&index).unwrap();
        assert_eq!(path, "stages[0].lrr");
        assert!(message.contains("did you mean `lr`?"), "{message}");
    }

    #[test]
    fn unknown_keys_in_nested_and_inline_tables() {
        let text = "[report]\nsampling = { temprature = 1.0 }\n";
        let index = SourceIndex::parse(Path::new("t.toml"), text).unwrap();
        let (path, message) = find_unknown_key(&index).unwrap();
        assert_eq!(path, "report.sampling.temprature");
        assert!(message.contains("`temperature`"), "{message}");

        let text = "[report]\nprobes = [{ prompt = \"a\", candidate = [\"b\"] }]\n";
        let index = SourceIndex::parse(Path::new("t.toml"), text).unwrap();
        assert_eq!(
            find_unknown_key(&index).unwrap().0,
            "report.probes[0].candidate"
        );

        let text = "modle = 1\n";
        let index = SourceIndex::parse(Path::new("t.toml"), text).unwrap();
        let (_, message) = find_unknown_key(&index).unwrap();
        assert!(message.contains("did you mean `model`?"), "{message}");
    }

    #[test]
    fn judges_are_named_tables_of_judge_keys() {
        assert!(Table::Root.keys().contains(&"judges"));
        assert_eq!(
            Table::Judge.keys(),
            &[
                "prefer",
                "avoid",
                "regex",
                "min_chars",
                "max_chars",
                "ends_with",
                "applies_to",
                "threshold"
            ]
        );
        let text = "[judges.polite]\nprefer = [\"请\"]\nthresold = 0.5\n";
        let index = SourceIndex::parse(Path::new("t.toml"), text).unwrap();
        let (path, message) = find_unknown_key(&index).unwrap();
        assert_eq!(path, "judges.polite.thresold");
        assert!(
            message.contains("in [judges.NAME]; did you mean `threshold`?"),
            "{message}"
        );
        let text = "[judges.polite]\nprefer = [\"请\"]\n[judges.short]\nmax_chars = 9\n";
        let index = SourceIndex::parse(Path::new("t.toml"), text).unwrap();
        assert_eq!(find_unknown_key(&index), None);
    }

    #[test]
    fn far_off_keys_list_the_valid_ones() {
        let message = Table::Model.unknown_key_message("zzzzzz");
        assert!(
            message.contains("expected one of `preset`, `block_size`"),
            "{message}"
        );
    }

    #[test]
    fn valid_documents_have_no_unknown_keys() {
        let text = "name = \"x\"\nseed = 1\n[model]\npreset = \"nano\"\nblock_size = 4\n[[stages]]\nname = \"a\"\nbetas = [0.9, 0.9]\n[report]\nprobes = [{ prompt = \"a\", candidates = [\"b\"] }]\nsampling = { top_k = 1 }\n";
        let index = SourceIndex::parse(Path::new("t.toml"), text).unwrap();
        assert_eq!(find_unknown_key(&index), None);
    }
}
