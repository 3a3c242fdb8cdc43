//! Turning the `data = [...]` patterns of a spec into a list of files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::open::{data_exists, logical_name};

/// The files named by `patterns`: plain paths must exist, globs (`*`, `?`, `[...]`) must match
/// at least one file; a file stored as `NAME.gz` counts as `NAME` (see `open`). Each
/// pattern's matches are sorted; patterns keep their order and a file named twice is listed
/// once, so the result is deterministic.
pub fn expand_paths(patterns: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        for file in expand_one(pattern)? {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

fn expand_one(pattern: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = pattern
        .to_str()
        .with_context(|| format!("data path {} is not valid UTF-8", pattern.display()))?;
    if !text.contains(['*', '?', '[']) {
        if pattern.is_dir() {
            bail!(
                "data path {text} is a directory: name files, or use a glob such as {text}/*.txt"
            );
        }
        if !data_exists(pattern) {
            bail!("data file {text} not found (nor {text}.gz)");
        }
        return Ok(vec![pattern.to_path_buf()]);
    }
    // `*.txt` also matches `a.txt.gz`, listed as `a.txt`: the name the opener reads it by.
    let mut matches = Vec::new();
    for glob_text in [text.to_string(), format!("{text}.gz")] {
        let entries =
            glob::glob(&glob_text).with_context(|| format!("invalid glob pattern {text}"))?;
        for entry in entries {
            let path = entry.with_context(|| format!("reading a match of {text}"))?;
            if path.is_file() {
                matches.push(logical_name(&path));
            }
        }
    }
    if matches.is_empty() {
        bail!("data pattern {text} matches no files");
    }
    matches.sort();
    matches.dedup();
    Ok(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gptlab-paths-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["b.txt", "a.txt", "c.jsonl", "sub/d.txt"] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        dir
    }

    #[test]
    fn gzipped_files_match_under_their_plain_names() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.txt.gz", "b.txt", "c.jsonl.gz"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let files = expand_paths(&[dir.path().join("*.txt"), dir.path().join("c.jsonl")]);
        let expected = ["a.txt", "b.txt", "c.jsonl"].map(|n| dir.path().join(n));
        assert_eq!(files.unwrap(), expected);
        // Named as stored, `a.txt.gz` is the same data as `a.txt`: listed once.
        let both = expand_paths(&[dir.path().join("*"), dir.path().join("*.txt")]).unwrap();
        assert_eq!(both, expected);
    }

    #[test]
    fn globs_expand_sorted_and_plain_paths_pass_through() {
        let dir = fixture();
        let files =
            expand_paths(&[dir.join("*.txt"), dir.join("c.jsonl"), dir.join("a.txt")]).unwrap();
        assert_eq!(
            files,
            vec![dir.join("a.txt"), dir.join("b.txt"), dir.join("c.jsonl")]
        );
        let nested = expand_paths(&[dir.join("**/*.txt")]).unwrap();
        assert_eq!(
            nested,
            vec![dir.join("a.txt"), dir.join("b.txt"), dir.join("sub/d.txt")]
        );
    }

    #[test]
    fn missing_files_and_empty_globs_are_errors_naming_the_pattern() {
        let dir = fixture();
        let err = expand_paths(&[dir.join("nope.txt")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope.txt") && err.contains("not found"),
            "{err}"
        );
        let err = expand_paths(&[dir.join("*.csv")]).unwrap_err().to_string();
        assert!(
            err.contains("*.csv") && err.contains("matches no files"),
            "{err}"
        );
        let err = expand_paths(&[dir.join("sub")]).unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");
    }
}
