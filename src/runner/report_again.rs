//! A trained run reported again with other `[report]` settings (`gptlab report RUN --set
//! report.KEY=VALUE`): a new run beside the old one, made from its saved spec with the
//! changes, whose stage folders and tokenizer are the old run's (hard links), so no stage
//! trains and the old run's report stays as it was. The new run is what `gptlab run` with the
//! same changes would make, so running that later finds it complete.

use super::reuse::same_folder;
use super::{run_loaded, Reuse, RunOptions};
use crate::results::{self, done_marker, read_meta};
use crate::spec::{load_spec, LoadOptions};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The only keys a new report may change: everything else would need training.
const REPORT_KEYS: &str = "report.";

/// Makes the new run and its report; returns its folder.
pub fn report_again(run: &Path, sets: &[String], data_root: PathBuf) -> Result<PathBuf> {
    if let Some(set) = sets
        .iter()
        .find(|s| !s.trim_start().starts_with(REPORT_KEYS))
    {
        bail!(
            "--set `{set}`: a new report changes only `[report]` keys (report.…); \
             `gptlab run SPEC --set …` trains the stages a change needs"
        );
    }
    if read_meta(run).is_none() {
        bail!(
            "{}: not a run folder (no readable meta.json)",
            run.display()
        );
    }
    let spec_path = run.join(results::SPEC_FILE);
    let opts = LoadOptions {
        data_root,
        sets: sets.to_vec(),
    };
    let loaded = load_spec(&spec_path, &opts)?;
    if let Some(stage) =
        (loaded.spec.stages.iter()).find(|s| !done_marker(&run.join(&s.name)).exists())
    {
        bail!(
            "{}: stage `{}` has not finished, so there is nothing to report again yet \
             (run the experiment to the end first)",
            run.display(),
            stage.name
        );
    }
    // <root>/<experiment>/<run id>: the new run goes beside the old one.
    let root = run
        .parent()
        .and_then(Path::parent)
        .context("a run folder has a results root")?;
    let new_run = results::run_dir(root, &loaded.spec.name, &loaded.run_id);
    if same_folder(&new_run, run) {
        println!("the settings are the run's own: its report is rebuilt in place");
        return crate::report::write_run_report(run).map(|_| run.to_path_buf());
    }
    if read_meta(&new_run).is_some_and(|m| m.complete) {
        println!(
            "{}: a run with these settings exists already",
            new_run.display()
        );
        return Ok(new_run);
    }
    // The stages were trained with the old run's tokenizer, whatever the data says today.
    std::fs::create_dir_all(&new_run)
        .with_context(|| format!("cannot create {}", new_run.display()))?;
    let tokenizer = run.join(results::TOKENIZER_FILE);
    crate::util::write_atomic(
        &new_run.join(results::TOKENIZER_FILE),
        &std::fs::read(&tokenizer)
            .with_context(|| format!("cannot read {}", tokenizer.display()))?,
    )?;
    let run_opts = RunOptions {
        results_root: root.to_path_buf(),
        load: opts,
        reuse: Reuse::FromRun(run.to_path_buf()),
    };
    run_loaded(&loaded, &new_run, &run_opts)?;
    println!(
        "a new report beside the old one (which is unchanged): {}",
        new_run.join(results::REPORT_HTML).display()
    );
    Ok(new_run)
}
