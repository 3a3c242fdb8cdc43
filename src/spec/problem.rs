//! A problem found in a spec after parsing: the canonical key path it is at (`stages[1].lr`),
//! which `errors.rs` locates in the file, and what is wrong. Validation and the data-path
//! checks both report them. A key's range is its declaration (`stage_keys.rs` reads it);
//! `require` is for the rules between keys.

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

pub(super) fn expected(what: &str, found: impl Display) -> String {
    format!("expected {what}, found {found}")
}
