//! Data paths in a spec: relative to the spec file's folder, or `$DATA/...` under the data
//! root. Globs stay patterns (the data module expands them), but a pattern whose fixed folder
//! does not exist is reported now rather than when its stage starts.

use std::path::{Component, Path, PathBuf};

use super::flat::FlatStage;
use super::problem::Problem;
use super::schema::Experiment;

/// Prefix that puts a path under the data root instead of the spec's folder.
pub const DATA_PREFIX: &str = "$DATA/";

/// Prefix of a path to the ratings an earlier feedback stage of the same run wrote:
/// `@NAME/preferences.jsonl` or `@NAME/feedback.jsonl`. The runner reads it from the run
/// folder once that stage has run.
pub const RATINGS_PREFIX: &str = "@";

/// The files a feedback stage writes into its folder.
pub const RATING_FILES: [&str; 2] = ["feedback.jsonl", "preferences.jsonl"];

/// `(stage, file)` of an `@stage/file` path.
pub fn rating_path(path: &Path) -> Option<(&str, &str)> {
    path.to_str()?.strip_prefix(RATINGS_PREFIX)?.split_once('/')
}

/// The data root: the `--data-root` flag, else `$GPTLAB_DATA`, else `datasets`.
pub fn data_root_from(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("GPTLAB_DATA")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from("datasets"))
}

/// Makes every `data`, `val_data`, `ptx_data` and `prompts` path absolute. `spec_dir` and
/// `data_root` may be relative (to the current directory).
pub fn resolve_paths(
    spec: &mut Experiment,
    spec_dir: &Path,
    data_root: &Path,
) -> Result<(), Problem> {
    let spec_dir = absolute(spec_dir);
    let data_root = absolute(data_root);
    for (index, stage) in spec.stages.iter_mut().enumerate() {
        let mut keys = FlatStage::from(stage.clone());
        resolve_stage_paths(&mut keys, index, &spec_dir, &data_root)?;
        *stage = keys.into_stage().map_err(|p| Problem {
            path: format!("stages[{index}].{}", p.key),
            message: p.message,
        })?;
    }
    if let Some(path) = spec.report.eval.as_mut().and_then(|e| e.data.as_mut()) {
        *path = resolve_one(path, &spec_dir, &data_root, "report.eval.data".into())?;
    }
    if let Some(path) = spec
        .report
        .eval
        .as_mut()
        .and_then(|e| e.judge_prompts.as_mut())
    {
        *path = resolve_one(
            path,
            &spec_dir,
            &data_root,
            "report.eval.judge_prompts".into(),
        )?;
    }
    Ok(())
}

/// The paths of one stage (`stages[index]`), rating paths (`@stage/file`) left as written.
fn resolve_stage_paths(
    keys: &mut FlatStage,
    index: usize,
    spec_dir: &Path,
    data_root: &Path,
) -> Result<(), Problem> {
    let written_as_list = keys.data.len() != 1;
    for (k, entry) in keys.data.iter_mut().enumerate() {
        let key = match written_as_list {
            true => format!("stages[{index}].data[{k}]"),
            false => format!("stages[{index}].data"),
        };
        if rating_path(&entry.path).is_none() {
            entry.path = resolve_one(&entry.path, spec_dir, data_root, key)?;
        }
    }
    // Only `val_data` may name a feedback stage's ratings, as `data` may.
    let val_data = keys.val_data.as_mut().filter(|p| rating_path(p).is_none());
    let singles = [
        ("val_data", val_data),
        ("ptx_data", keys.ptx_data.as_mut()),
        ("prompts", keys.prompts.as_mut()),
        ("path", keys.path.as_mut()),
    ];
    for (name, path) in singles {
        if let Some(path) = path {
            let key = format!("stages[{index}].{name}");
            *path = resolve_one(path, spec_dir, data_root, key)?;
        }
    }
    Ok(())
}

fn resolve_one(
    path: &Path,
    spec_dir: &Path,
    data_root: &Path,
    key: String,
) -> Result<PathBuf, Problem> {
    let text = path.to_string_lossy();
    let resolved = match text.strip_prefix(DATA_PREFIX) {
        Some(rest) => normalize(&data_root.join(rest)),
        None => normalize(&spec_dir.join(path)),
    };
    let folder = fixed_folder(&resolved);
    if !folder.is_dir() {
        let hint = if text.starts_with(DATA_PREFIX) {
            format!(
                " (the data root is `{}`; change it with --data-root or GPTLAB_DATA)",
                data_root.display()
            )
        } else {
            format!(
                " (paths are relative to the spec file's folder `{}`)",
                spec_dir.display()
            )
        };
        return Err(Problem {
            path: key,
            message: format!(
                "folder `{}` does not exist, so `{text}` cannot be found{hint}",
                folder.display()
            ),
        });
    }
    Ok(resolved)
}

/// The folder that must exist for a path or pattern to match anything: the parent of a
/// plain path, or the components before the first one with a wildcard.
pub fn fixed_folder(path: &Path) -> PathBuf {
    let components: Vec<Component> = path.components().collect();
    let first_pattern = components
        .iter()
        .position(|c| is_pattern(&c.as_os_str().to_string_lossy()));
    let keep = first_pattern.unwrap_or(components.len().saturating_sub(1));
    components[..keep].iter().collect()
}

/// Whether a path or argument is a glob pattern rather than a plain path.
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Absolute without touching the file system (the path may not exist yet).
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    normalize(&joined)
}

/// Removes `.` and `..` lexically, so that the same file always resolves to the same text
/// (which the run id hashes).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::data_entry::DataEntry;
    use crate::spec::kinds::StageKind;
    use crate::spec::stage::Stage;

    #[test]
    fn fixed_folders() {
        assert_eq!(fixed_folder(Path::new("/a/b/c.txt")), PathBuf::from("/a/b"));
        assert_eq!(fixed_folder(Path::new("/a/b/*.txt")), PathBuf::from("/a/b"));
        assert_eq!(fixed_folder(Path::new("/a/*/x/c.txt")), PathBuf::from("/a"));
        assert_eq!(
            fixed_folder(Path::new("/a/b/**/c[0-9].txt")),
            PathBuf::from("/a/b")
        );
    }

    #[test]
    fn normalizes_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }

    #[test]
    fn resolves_relative_and_data_paths() {
        let dir = tempfile::tempdir().unwrap();
        let spec_dir = dir.path().join("experiments");
        let data_root = dir.path().join("data");
        std::fs::create_dir_all(spec_dir.join("local")).unwrap();
        std::fs::create_dir_all(data_root.join("demo")).unwrap();
        let mut stage = FlatStage::new("s", StageKind::Pretrain);
        stage.data = vec![
            DataEntry::plain("local/a.txt"),
            DataEntry::plain("$DATA/demo/*.jsonl"),
        ];
        stage.val_data = Some(PathBuf::from("../data/demo/val.jsonl"));
        let mut spec = test_spec(stage.into_stage().unwrap());
        resolve_paths(&mut spec, &spec_dir, &data_root).unwrap();
        let stage = &spec.stages[0];
        assert_eq!(stage.data[0].path, spec_dir.join("local/a.txt"));
        assert_eq!(stage.data[1].path, data_root.join("demo/*.jsonl"));
        assert_eq!(
            stage.val_data.as_deref(),
            Some(data_root.join("demo/val.jsonl").as_path())
        );
    }

    #[test]
    fn missing_pattern_folders_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut stage = FlatStage::new("s", StageKind::Pretrain);
        stage.data = vec![DataEntry::plain("$DATA/nowhere/*.txt")];
        let mut spec = test_spec(stage.into_stage().unwrap());
        let problem = resolve_paths(&mut spec, dir.path(), &dir.path().join("data")).unwrap_err();
        assert_eq!(problem.path, "stages[0].data");
        assert!(problem.message.contains("nowhere"), "{}", problem.message);
        assert!(problem.message.contains("data root"), "{}", problem.message);
    }

    #[test]
    fn data_root_prefers_the_flag() {
        assert_eq!(data_root_from(Some(PathBuf::from("x"))), PathBuf::from("x"));
    }

    fn test_spec(stage: Stage) -> Experiment {
        toml::from_str::<Experiment>(
            "name = \"t\"\n[model]\npreset = \"nano\"\nblock_size = 8\n[tokenizer]\nkind = \"char\"\nvocab_size = 64\n[[stages]]\nname = \"s\"\nkind = \"pretrain\"\ndata = \"x\"\n",
        )
        .map(|mut spec| {
            spec.stages = vec![stage];
            spec
        })
        .unwrap()
    }
}
