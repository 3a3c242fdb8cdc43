//! Turning the `data = [...]` patterns of a spec into a list of files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The files named by `patterns`: plain paths must exist, globs (`*`, `?`, `[...]`) must match
/// at least one file. Each pattern's matches are sorted; patterns keep their order and a file
/// named twice is listed once, so the result is deterministic.
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
        if !pattern.is_file() {
            bail!("data file {text} not found");
        }
        return Ok(vec![pattern.to_path_buf()]);
    }
    let mut matches = Vec::new();
    let entries = glob::glob(text).with_context(|| format!("invalid glob pattern {text}"))?;
    for entry in entries {
        let path = entry.with_context(|| format!("reading a match of {text}"))?;
        if path.is_file() {
            matches.push(path);
        }
    }
    if matches.is_empty() {
        bail!("data pattern {text} matches no files");
    }
    matches.sort();
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
