//! `--emit slurm`: an `sbatch` job-array script. Array task i runs
//! `gptlab sweep SWEEP --point i` against the shared results folder, so each point runs on
//! whichever node Slurm gives it, and the skip/resume rules make resubmitting it safe.

use super::points::OpenSweep;
use crate::util::write_atomic;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// Passed on to every task.
    pub rerun_failed: bool,
    /// Passed on to every task.
    pub no_reuse: bool,
}

/// Writes `<sweep>/sweep.sbatch` (and creates `<sweep>/slurm/` for the task logs).
pub fn write_slurm_script(open: &OpenSweep, options: &SlurmOptions) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the gptlab executable")?;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let script = slurm_script(open, options, &exe, &cwd);
    let logs = open.dirs.slurm_logs();
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let path = open.dirs.slurm_script();
    write_atomic(&path, script.as_bytes())?;
    Ok(path)
}

pub fn slurm_script(open: &OpenSweep, options: &SlurmOptions, exe: &Path, cwd: &Path) -> String {
    let n = open.points.len();
    let name = &open.sweep.name;
    let mut s = String::from("#!/bin/bash\n");
    s += &format!(
        "# gptlab sweep `{name}`: {n} points of {}, one per array task.\n",
        open.sweep.base.display()
    );
    s +=
        "# Submit with `sbatch` this file. Resubmitting is safe: finished points are skipped and\n";
    s += "# interrupted ones resume. The gptlab binary, the sweep and base files, the data and\n";
    s += "# the results folder must be on a filesystem every node sees.\n";
    s += &format!("#SBATCH --job-name=gptlab-{name}\n");
    s += &format!("#SBATCH --array=0-{}\n", n.saturating_sub(1));
    s += &format!(
        "#SBATCH --output={}/%A_%a.out\n",
        open.dirs.slurm_logs().display()
    );
    if let Some(p) = &options.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(g) = options.gpus_per_task {
        s += &format!("#SBATCH --gpus-per-task={g}\n");
    }
    if let Some(t) = &options.time {
        s += &format!("#SBATCH --time={t}\n");
    }
    if let Some(c) = options.cpus_per_task {
        s += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    s += "#\n# Points (array task id: label [overrides]):\n";
    for resolved in &open.points {
        s += &format!(
            "#   {}: {}   [{}]\n",
            resolved.point.index,
            open.label(resolved.point.index),
            resolved.point.set_args().join(" ")
        );
    }
    s += "\nset -euo pipefail\n";
    s += &format!("cd {}\n", quote(&cwd.display().to_string()));
    s += "# One point per task: use the task's CPUs for its compute threads.\n";
    s += "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export RAYON_NUM_THREADS=\"$SLURM_CPUS_PER_TASK\"; fi\n";
    let results_root = open
        .dirs
        .root
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut args = vec![
        quote(&exe.display().to_string()),
        "sweep".into(),
        quote(&open.file.display().to_string()),
        "--point".into(),
        "\"$SLURM_ARRAY_TASK_ID\"".into(),
        "--results".into(),
        quote(&results_root.display().to_string()),
        "--data-root".into(),
        quote(&open.shared.data_root.display().to_string()),
    ];
    for set in &open.shared.sets {
        args.push("--set".into());
        args.push(quote(set));
    }
    if options.rerun_failed {
        args.push("--rerun-failed".into());
    }
    if options.no_reuse {
        args.push("--no-reuse".into());
    }
    s += &format!("exec {}\n", args.join(" "));
    s
}

/// Single-quoted for bash (a `'` becomes `'\''`).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_bash() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
