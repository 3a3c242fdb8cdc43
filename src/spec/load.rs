//! Reading a spec file: `--set` overrides, unknown keys, types, ranges, stage references,
//! path resolution, and the run id of the fully resolved result.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use sha2::{Digest, Sha256};

use super::errors::SpecErrors;
use super::flat::FlatStage;
use super::keys::find_unknown_key;
use super::overrides::apply_sets;
use super::paths::{absolute, is_pattern, resolve_paths};
use super::pretrained;
use super::problem;
use super::schema::Experiment;
use super::source::SourceIndex;
use super::validate;

pub use super::paths::data_root_from;

#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Where `$DATA/...` paths point.
    pub data_root: PathBuf,
    /// `key=value` overrides, applied in order.
    pub sets: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            data_root: data_root_from(None),
            sets: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSpec {
    /// Validated, with every path absolute.
    pub spec: Experiment,
    /// The spec file, absolute.
    pub path: PathBuf,
    /// `spec` as TOML with every default written out: saved as `spec.toml` with each run.
    pub resolved_toml: String,
    /// First 12 hex digits of the SHA-256 of `resolved_toml`: identical resolved specs share
    /// a run id, which is how re-running resumes or skips.
    pub run_id: String,
    /// The `--set` overrides that were applied (already part of `spec`).
    pub sets: Vec<String>,
}

impl LoadedSpec {
    /// "3 stages (pretrain, sft, rlhf/ppo)", for `gptlab validate`.
    pub fn summary(&self) -> String {
        let stages = &self.spec.stages;
        let kinds: Vec<String> = stages
            .iter()
            .map(|stage| match stage.method.algorithm() {
                Some(algorithm) => format!("{}/{}", stage.method.kind(), algorithm.as_str()),
                None => stage.method.kind().to_string(),
            })
            .collect();
        let plural = if stages.len() == 1 { "" } else { "s" };
        format!("{} stage{plural} ({})", stages.len(), kinds.join(", "))
    }

    /// `file:line:column` of a key (`stages[0].data`) followed by the key as users write it,
    /// for errors found after loading (a data file); only the file when the key is not
    /// written in it (a default, or set with `--set`).
    pub fn locate(&self, key: &str) -> String {
        let file = self.path.display();
        let index = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| SourceIndex::parse(&self.path, &text).ok());
        match index {
            Some(index) => match index.position_of(key) {
                Some((line, column)) => {
                    format!("{file}:{line}:{column}: `{}`", index.display_path(key))
                }
                None => format!("{file}: `{}`", index.display_path(key)),
            },
            None => format!("{file}: `{key}`"),
        }
    }
}

/// Reads, overrides, checks and resolves one experiment spec. Every error is one paragraph
/// naming the file, the line and column (or the `--set` argument), the key and what was
/// expected.
pub fn load_spec(path: &Path, opts: &LoadOptions) -> anyhow::Result<LoadedSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read experiment spec `{}`", path.display()))?;
    let original = SourceIndex::parse(path, &text)?;
    let (edited_text, applied) = apply_sets(path, &text, &opts.sets)?;
    let edited = match applied.is_empty() {
        true => None,
        false => Some(SourceIndex::parse(path, &edited_text)?),
    };
    let errors = SpecErrors::new(original, edited, applied);

    // Unknown keys first: serde would stop at the first one too, but without a suggestion.
    if let Some((key_path, message)) = find_unknown_key(errors.latest()) {
        return Err(errors.at(&key_path, message));
    }
    let flat: Experiment<FlatStage> =
        toml::from_str(&edited_text).map_err(|error| errors.from_toml(&error))?;
    let located = |problem: problem::Problem| errors.at(&problem.path, problem.message);
    let mut spec = validate::typed(flat).map_err(located)?;
    validate::check(&spec).map_err(located)?;

    let spec_dir = path.parent().unwrap_or(Path::new("."));
    resolve_paths(&mut spec, spec_dir, &opts.data_root).map_err(located)?;
    pretrained::check_folders(&spec).map_err(located)?;

    let resolved_toml = toml::to_string(&spec).context("cannot write the resolved spec as TOML")?;
    let run_id = match pretrained::with_content_hashes(&spec)
        .map_err(|e| errors.at("stages[0].path", format!("cannot read the checkpoint: {e}")))?
    {
        // The folder's content, not where it lies, identifies a pretrained run.
        Some(hashed) => run_id_of(&toml::to_string(&hashed).context("cannot write the spec")?),
        None => run_id_of(&resolved_toml),
    };
    Ok(LoadedSpec {
        spec,
        path: absolute(path),
        resolved_toml,
        run_id,
        sets: opts.sets.clone(),
    })
}

/// The run id of a resolved spec text.
pub fn run_id_of(resolved_toml: &str) -> String {
    let digest = Sha256::digest(resolved_toml.as_bytes());
    digest
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Spec files named on the command line: each argument is a file, a folder (its `*.toml`)
/// or a glob; a pattern that matches nothing is an error naming it. Sorted within each
/// argument, duplicates dropped.
pub fn expand_spec_args(args: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        let matched = if is_pattern(arg) {
            glob_files(arg)?
        } else if path.is_dir() {
            glob_files(&path.join("*.toml").to_string_lossy())?
        } else if path.is_file() {
            vec![path.to_path_buf()]
        } else {
            return Err(anyhow!("no such spec file `{arg}`"));
        };
        if matched.is_empty() {
            return Err(anyhow!("no spec files match `{arg}`"));
        }
        for file in matched {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    Ok(files)
}

fn glob_files(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let paths = glob::glob(pattern)
        .map_err(|error| anyhow!("invalid glob pattern `{pattern}`: {error}"))?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
#[path = "load/tests.rs"]
mod tests;
