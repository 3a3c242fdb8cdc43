//! A problem found in a spec after parsing: the canonical key path it is at (`stages[1].lr`),
//! which `errors.rs` locates in the file, and what is wrong. Validation and the data-path
//! checks both report them.

/// A value that breaks a rule: which key, and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}
