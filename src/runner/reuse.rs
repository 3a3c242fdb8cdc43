//! Taking a finished stage from an earlier run instead of training it again: finding a stage
//! folder with the same identity (`identity.rs`) under the results root, filling this run's
//! stage folder with its files, and the lock that keeps two runs needing the same missing
//! stage at once from both training it.

use crate::results::meta::{read_stage_record, write_stage_record, Reused};
use crate::results::{done_marker, StageMeta};
use crate::util::lock::FileLock;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the identity locks live, under the results root.
const LOCKS: &str = ".locks";

/// How often a run waiting for another to finish a stage says so (a sweep stops a point that
/// writes nothing for ten minutes).
const WAITING_NOTE: Duration = Duration::from_secs(60);

/// Held while this process trains, or takes, the stage with this identity: a second process
/// needing the same stage waits, then finds it finished and takes it.
pub fn lock_identity(root: &Path, identity: &str, stage: &str) -> Result<FileLock> {
    let path = root.join(LOCKS).join(format!("{identity}.lock"));
    let started = Instant::now();
    let mut noted = Duration::ZERO;
    loop {
        if let Some(lock) = FileLock::try_acquire(&path)? {
            return Ok(lock);
        }
        if started.elapsed() >= noted {
            println!(
                "[{stage}] another run is making this stage (same inputs): waiting for it ({:.0}s)",
                started.elapsed().as_secs_f64()
            );
            noted += WAITING_NOTE;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A finished stage folder under `root`, outside `run_dir`, with this identity. Stage
/// folders are `<root>/<experiment>/<run>/<stage>`; their `done.json` is written last, so a
/// folder that has one is complete.
pub fn find_finished(root: &Path, identity: &str, run_dir: &Path) -> Option<PathBuf> {
    let children = |dir: &Path| -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        dirs
    };
    let runs = children(root).into_iter().flat_map(|e| children(&e));
    runs.filter(|run| !same_folder(run, run_dir))
        .flat_map(|run| children(&run))
        .find(|stage| {
            read_stage_record(stage).is_ok_and(|r| r.identity.as_deref() == Some(identity))
        })
}

/// Whether two paths name the same folder.
pub fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Makes `dir` a copy of the finished stage folder `source`, by hard links where the file
/// system allows and copies elsewhere, and records where it came from in its `done.json`.
/// The files go into a temporary folder renamed into place, so `dir` is either as it was or
/// complete. Hard links are safe because nothing rewrites a stage's files in place: every
/// writer replaces a file by renaming a new one over it.
pub fn take_stage(source: &Path, dir: &Path) -> Result<StageMeta> {
    let mut record = read_stage_record(source)?;
    let parent = dir.parent().context("a stage folder has a run folder")?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("stage");
    let tmp = parent.join(format!(".{name}.{}.taking", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let linked = fill(source, &tmp)
        .with_context(|| format!("cannot take {} into {}", source.display(), dir.display()))?;
    record.reused = Some(Reused {
        run: crate::results::run_of_stage(source).display().to_string(),
        how: if linked { "hard links" } else { "copies" }.into(),
    });
    write_stage_record(&tmp, &record)?;
    if dir.exists() {
        // An interrupted attempt of this run: the finished stage replaces it.
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(record)
}

/// Links (or copies) every file of `source` into the new folder `to`, but its `done.json`,
/// written afresh, and temporary files of a writer at work. True when all were linked.
fn fill(source: &Path, to: &Path) -> Result<bool> {
    std::fs::create_dir_all(to)?;
    let mut linked = true;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let (from, name) = (entry.path(), entry.file_name());
        let temporary = name.to_string_lossy().starts_with('.');
        if temporary || from == done_marker(source) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            linked &= fill(&from, &target)?;
        } else if std::fs::hard_link(&from, &target).is_err() {
            std::fs::copy(&from, &target)
                .with_context(|| format!("cannot copy {}", from.display()))?;
            linked = false;
        }
    }
    Ok(linked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished_stage(dir: &Path, identity: &str) {
        std::fs::create_dir_all(dir.join("charts")).unwrap();
        std::fs::write(dir.join("model.safetensors"), "weights").unwrap();
        std::fs::write(dir.join("charts/loss.svg"), "<svg/>").unwrap();
        std::fs::write(dir.join(".metrics.csv.1.0.tmp"), "half").unwrap();
        let record = StageMeta {
            name: "base".into(),
            identity: Some(identity.into()),
            ..Default::default()
        };
        write_stage_record(dir, &record).unwrap();
    }

    #[test]
    fn finds_a_finished_stage_by_identity_and_takes_it() {
        let root = tempfile::tempdir().unwrap();
        let source = root.path().join("exp/run1/base");
        finished_stage(&source, "abc");
        let here = root.path().join("exp/run2");
        std::fs::create_dir_all(here.join("base")).unwrap();
        std::fs::write(here.join("base/resume.safetensors"), "partial").unwrap();
        assert_eq!(find_finished(root.path(), "abd", &here), None);
        assert_eq!(
            find_finished(root.path(), "abc", &root.path().join("exp/run1")),
            None
        );
        let found = find_finished(root.path(), "abc", &here).unwrap();
        assert_eq!(found, source);

        let record = take_stage(&found, &here.join("base")).unwrap();
        let reused = record.reused.unwrap();
        assert_eq!(reused.how, "hard links");
        assert_eq!(Path::new(&reused.run), root.path().join("exp/run1"));
        let taken = here.join("base");
        assert_eq!(
            std::fs::read_to_string(taken.join("model.safetensors")).unwrap(),
            "weights"
        );
        assert_eq!(
            std::fs::read_to_string(taken.join("charts/loss.svg")).unwrap(),
            "<svg/>"
        );
        assert!(
            !taken.join("resume.safetensors").exists(),
            "the partial attempt is gone"
        );
        assert!(!taken.join(".metrics.csv.1.0.tmp").exists());
        // The source's own record still says it was trained there.
        assert!(read_stage_record(&source).unwrap().reused.is_none());
        assert!(read_stage_record(&taken).unwrap().reused.is_some());
    }
}
