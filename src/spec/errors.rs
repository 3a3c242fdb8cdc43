//! One-paragraph errors that say where (`file:line:column`, or the `--set` argument), which
//! key (stages by name) and what was expected.

use std::fmt::Display;

use anyhow::anyhow;

use super::overrides::AppliedSet;
use super::source::SourceIndex;
use super::suggest;

/// Turns a canonical key path and a message into a located error.
pub struct SpecErrors {
    /// The file as written: positions are reported in it.
    original: SourceIndex,
    /// The file after `--set` overrides, which is what gets deserialised: its spans are
    /// mapped back to key paths, which are then located in `original`.
    edited: Option<SourceIndex>,
    sets: Vec<AppliedSet>,
}

impl SpecErrors {
    pub fn new(
        original: SourceIndex,
        edited: Option<SourceIndex>,
        sets: Vec<AppliedSet>,
    ) -> SpecErrors {
        SpecErrors {
            original,
            edited,
            sets,
        }
    }

    /// An error about the key at canonical `path` (`stages[1].lr`); an empty path means the
    /// document as a whole.
    pub fn at(&self, path: &str, message: impl Display) -> anyhow::Error {
        let file = self.original.file.display();
        let key = match path {
            "" => String::new(),
            _ => format!("`{}`: ", self.latest().display_path(path)),
        };
        if let Some(set) = self.set_for(path) {
            return anyhow!("{file} (--set `{}`): {key}{message}", set.arg);
        }
        let (line, column) = self.original.position_of(path).unwrap_or((1, 1));
        anyhow!("{file}:{line}:{column}: {key}{message}")
    }

    /// A deserialisation error (wrong type, unknown variant, missing field) located by its span.
    pub fn from_toml(&self, error: &toml::de::Error) -> anyhow::Error {
        let path = error
            .span()
            .and_then(|span| self.latest().path_at(span))
            .unwrap_or("");
        self.at(path, explain(error.message()))
    }

    /// The document that is deserialised: the file with its overrides.
    pub fn latest(&self) -> &SourceIndex {
        self.edited.as_ref().unwrap_or(&self.original)
    }

    /// The last `--set` that wrote `path` or a table around it.
    fn set_for(&self, path: &str) -> Option<&AppliedSet> {
        self.sets.iter().rev().find(|set| {
            path == set.path
                || path
                    .strip_prefix(set.path.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    }
}

/// Rewords serde's messages for people writing TOML, and adds a suggestion to
/// "unknown variant" errors (`preset = "nanoo"`).
pub fn explain(message: &str) -> String {
    let message = message.trim().replace('\n', "; ");
    let message = message
        .replace("expected f64", "expected a number")
        .replace("expected u64", "expected a whole number >= 0")
        .replace("expected usize", "expected a whole number >= 0")
        .replace("expected a borrowed string", "expected a string")
        .replace("missing field", "missing key");
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let quoted: Vec<&str> = rest.split('`').collect();
        // quoted = [typed, ", expected one of ", a, ", ", b, ...]
        let typed = quoted[0];
        let valid = quoted.iter().skip(2).step_by(2).copied();
        return format!("{message}{}", suggest::did_you_mean(typed, valid));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TEXT: &str = "name = \"x\"\n[[stages]]\nname = \"base\"\nlr = 1e-3\n";

    fn errors(sets: Vec<AppliedSet>) -> SpecErrors {
        SpecErrors::new(
            SourceIndex::parse(Path::new("t.toml"), TEXT).unwrap(),
            None,
            sets,
        )
    }

    #[test]
    fn names_file_line_column_and_key() {
        let error = errors(vec![])
            .at("stages[0].lr", "expected > 0")
            .to_string();
        assert_eq!(error, "t.toml:4:1: `stages.base.lr`: expected > 0");
        let error = errors(vec![]).at("", "missing field `model`").to_string();
        assert_eq!(error, "t.toml:1:1: missing field `model`");
    }

    #[test]
    fn names_the_set_argument_for_overridden_keys() {
        let set = AppliedSet {
            arg: "stages.base.lr=-1".into(),
            path: "stages[0].lr".into(),
        };
        let error = errors(vec![set])
            .at("stages[0].lr", "expected > 0")
            .to_string();
        assert_eq!(
            error,
            "t.toml (--set `stages.base.lr=-1`): `stages.base.lr`: expected > 0"
        );
        let set = AppliedSet {
            arg: "stages.base.l=1".into(),
            path: "stages[0].l".into(),
        };
        assert!(errors(vec![set])
            .at("stages[0].lr", "x")
            .to_string()
            .starts_with("t.toml:4:1"));
    }

    #[test]
    fn suggests_enum_variants() {
        let message =
            explain("unknown variant `nanoo`, expected one of `nano`, `small`, `medium`, `gpt2`");
        assert!(message.ends_with("did you mean `nano`?"), "{message}");
        let message = explain("unknown variant `cdua`, expected `cpu` or `cuda`");
        assert!(message.ends_with("did you mean `cuda`?"), "{message}");
        assert_eq!(
            explain("invalid type: string \"x\", expected f64"),
            "invalid type: string \"x\", expected a number"
        );
    }
}
