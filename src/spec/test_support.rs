//! For the spec's unit tests: a spec loaded from its text, the way `load_spec` loads a file.

use crate::spec::{load_spec, LoadOptions, LoadedSpec};

/// `text` written to a spec file in a fresh folder (also the data root) and loaded with the
/// `--set` overrides `sets`.
pub fn load_text(text: &str, sets: &[&str]) -> anyhow::Result<LoadedSpec> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, text).unwrap();
    let opts = LoadOptions {
        data_root: dir.path().to_path_buf(),
        sets: sets.iter().map(|s| s.to_string()).collect(),
    };
    load_spec(&path, &opts)
}

/// The error (with its causes) of loading `text`; panics if it loads.
pub fn error_text(text: &str, sets: &[&str]) -> String {
    match load_text(text, sets) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => format!("{error:#}"),
    }
}
