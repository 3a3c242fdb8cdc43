//! A problem found in a spec after parsing: the canonical key path it is at (`stages[1].lr`),
//! which `errors.rs` locates in the file, and what is wrong. Validation and the data-path
//! checks both report them. The rules below are the ones every part of a spec checks with
//! (validation and each RLHF method's ranges), so they sit below both.

use std::fmt::Display;

/// A value that breaks a rule: which key, and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

pub(super) type Checked = Result<(), Problem>;

pub(super) fn require(
    ok: bool,
    path: impl Into<String>,
    message: impl FnOnce() -> String,
) -> Checked {
    if ok {
        Ok(())
    } else {
        Err(Problem {
            path: path.into(),
            message: message(),
        })
    }
}

pub(super) fn non_negative(path: String, value: f64) -> Checked {
    require(value >= 0.0 && value.is_finite(), path, || {
        expected("a number >= 0", value)
    })
}

pub(super) fn between(path: String, value: f64, low: f64, high: f64) -> Checked {
    require((low..=high).contains(&value), path, || {
        expected(&format!("a number in [{low}, {high}]"), value)
    })
}

pub(super) fn positive_int<T: PartialOrd + Default + Display>(path: String, value: T) -> Checked {
    require(value > T::default(), path, || {
        expected("a whole number > 0", value)
    })
}

pub(super) fn expected(what: &str, found: impl Display) -> String {
    format!("expected {what}, found {found}")
}
