//! What a stage key's declaration says, read from the fields of `FlatStage` (`flat.rs`)
//! through the JSON Schema schemars derives from them, once: which stages take the key
//! (`x-stages`) and which values it accepts (`minimum`, `exclusiveMinimum`, `maximum`, ...,
//! and `items` for a list). The per-method key lists (`keys.rs`, and through them `--set` and
//! the schema's stage variants) and validation's range checks read them here, so a key is
//! declared in one place. The other tables' keys are checked the same way, from their own
//! fields' declarations (`check_declared`).

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::flat::FlatStage;
use super::kinds::{Algorithm, StageKind};
use super::problem::{expected, require, Checked};
use super::schema_of::schema_of;
use super::stage::Stage;

/// The flat stage's schema with its `x-` declarations, as schemars derives it.
pub fn flat_schema() -> &'static Value {
    static SCHEMA: LazyLock<Value> = LazyLock::new(schema_of::<FlatStage>);
    &SCHEMA
}

/// A stage key's declaration (its property in the flat stage's schema).
pub fn declaration(key: &str) -> Option<&'static Value> {
    flat_schema()["properties"].get(key)
}

/// The stage kinds and algorithms that take `key`, as `x-stages` names them; `None` when
/// every stage takes it.
pub fn stages_of(key: &str) -> Option<Vec<&'static str>> {
    let stages = declaration(key)?.get("x-stages")?.as_array()?;
    Some(stages.iter().filter_map(Value::as_str).collect())
}

/// Whether a stage of this kind (and algorithm) takes `key`: every stage does when the key
/// names no stages; otherwise one of its names is the kind or the algorithm. No stage takes
/// a key that is not declared.
pub fn takes(key: &str, kind: StageKind, algorithm: Option<Algorithm>) -> bool {
    declaration(key).is_some()
        && stages_of(key).is_none_or(|stages| {
            stages
                .iter()
                .any(|&name| name == kind.as_str() || algorithm.is_some_and(|a| a.as_str() == name))
        })
}

/// Whether the key names a file the run reads (`x-path`).
pub fn is_path(declared: &Value) -> bool {
    declared.get("x-path") == Some(&Value::Bool(true))
}

/// The values a key accepts, from its declaration's bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The lower bound, and whether it is allowed itself.
    pub min: Option<(f64, bool)>,
    pub max: Option<(f64, bool)>,
    /// Whole numbers only.
    pub whole: bool,
}

impl Range {
    /// The bounds a declaration states; `None` when it states none.
    pub fn of(declared: &Value) -> Option<Range> {
        let bound = |inclusive: &str, exclusive: &str| {
            let inclusive = declared.get(inclusive).and_then(Value::as_f64);
            let exclusive = declared.get(exclusive).and_then(Value::as_f64);
            inclusive
                .map(|x| (x, true))
                .or(exclusive.map(|x| (x, false)))
        };
        let range = Range {
            min: bound("minimum", "exclusiveMinimum"),
            max: bound("maximum", "exclusiveMaximum"),
            whole: declared.get("type") == Some(&Value::from("integer")),
        };
        (range.min.is_some() || range.max.is_some()).then_some(range)
    }

    pub fn contains(&self, x: f64) -> bool {
        let above = self
            .min
            .is_none_or(|(low, with)| x > low || (with && x == low));
        let below = self
            .max
            .is_none_or(|(high, with)| x < high || (with && x == high));
        x.is_finite() && above && below
    }

    /// `> 0`, `>= 1`, `in [0, 1)`.
    pub fn bounds_text(&self) -> String {
        match (self.min, self.max) {
            (Some((low, with_low)), Some((high, with_high))) => format!(
                "in {}{low}, {high}{}",
                if with_low { "[" } else { "(" },
                if with_high { "]" } else { ")" }
            ),
            (Some((low, with)), None) => format!("{} {low}", if with { ">=" } else { ">" }),
            (None, Some((high, with))) => format!("{} {high}", if with { "<=" } else { "<" }),
            (None, None) => String::new(),
        }
    }

    /// "a number > 0", "a whole number >= 2"; "a whole number > 0" for >= 1, as the other
    /// tables' checks say it.
    pub fn expected_text(&self) -> String {
        if self.whole && self.min == Some((1.0, true)) && self.max.is_none() {
            return "a whole number > 0".into();
        }
        let what = if self.whole {
            "a whole number"
        } else {
            "a number"
        };
        format!("{what} {}", self.bounds_text())
    }
}

/// Checks one value (and, for a list, each item) against its declaration's bounds; `path`
/// is where the problem is reported.
pub fn check_value(declared: &Value, value: &toml::Value, path: &str) -> Checked {
    if let (Some(items), toml::Value::Array(values)) = (declared.get("items"), value) {
        for (k, item) in values.iter().enumerate() {
            check_value(items, item, &format!("{path}[{k}]"))?;
        }
    }
    let Some(range) = Range::of(declared) else {
        return Ok(());
    };
    let found = match value {
        toml::Value::Integer(n) => *n as f64,
        toml::Value::Float(x) => *x,
        _ => return Ok(()),
    };
    require(range.contains(found), path, || {
        expected(&range.expected_text(), found)
    })
}

/// Checks each key of a spec table of type `T` (the report's tables, a judge, a sampling
/// group) against the range its field declares, as a stage's keys are checked; `at(key)` is
/// the key's path.
pub fn check_declared<T: JsonSchema + Serialize>(
    table: &T,
    at: &dyn Fn(&str) -> String,
) -> Checked {
    let schema = schema_of::<T>();
    let values = toml::Table::try_from(table).expect("a spec table is TOML");
    for (key, value) in &values {
        if let Some(declared) = schema["properties"].get(key) {
            check_value(declared, value, &at(key))?;
        }
    }
    Ok(())
}

/// Checks each key `stage`'s method takes against its declared range, as the key is written
/// in the resolved spec; `at(key)` is the key's path.
pub fn check_ranges(stage: &Stage, at: &dyn Fn(&str) -> String) -> Checked {
    let (kind, algorithm) = (stage.method.kind(), stage.method.algorithm());
    let values = toml::Table::try_from(FlatStage::from(stage.clone())).expect("a stage is TOML");
    for (key, value) in &values {
        if let Some(declared) = declaration(key).filter(|_| takes(key, kind, algorithm)) {
            check_value(declared, value, &at(key))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::keys::Table;
    use crate::spec::stage::methods;

    #[test]
    fn every_stage_name_is_a_kind_or_an_algorithm() {
        let names: Vec<&str> = methods()
            .iter()
            .flat_map(|(kind, algorithm)| [Some(kind.as_str()), algorithm.map(|a| a.as_str())])
            .flatten()
            .collect();
        for key in Table::Stage.keys() {
            for name in stages_of(key).unwrap_or_default() {
                assert!(names.contains(&name), "{key}: {name}");
            }
        }
        assert_eq!(stages_of("beta"), Some(vec!["dpo", "kto"]));
        assert_eq!(stages_of("lr"), None);
        assert!(takes("ptx_coef", StageKind::Rlhf, Some(Algorithm::Dpo)));
        assert!(!takes("ptx_coef", StageKind::Sft, None));
        assert!(takes("prompts", StageKind::Feedback, None));
    }

    #[test]
    fn ranges_read_from_the_declarations() {
        let range = |key| Range::of(declaration(key).unwrap()).unwrap();
        assert_eq!(range("lr").expected_text(), "a number > 0");
        assert_eq!(range("steps").expected_text(), "a whole number > 0");
        assert_eq!(range("group_size").expected_text(), "a whole number >= 2");
        assert_eq!(range("gamma").expected_text(), "a number in [0, 1]");
        let betas = Range::of(&declaration("betas").unwrap()["items"]).unwrap();
        assert_eq!(betas.bounds_text(), "in [0, 1)");
        assert!(!betas.contains(1.0) && betas.contains(0.0));
        assert!(!range("lr").contains(f64::INFINITY) && !range("lr").contains(f64::NAN));
    }
}
