//! `gptlab sweep SWEEP`: run a sweep's points, list them, or write a Slurm script
//! (`crate::sweep`).

use super::common::results_root;
use crate::spec::{data_root_from, LoadOptions};
use crate::sweep::{watch, SweepOptions};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Emit {
    /// An sbatch job-array script, one point per array task.
    Slurm,
}

#[derive(clap::Args, Clone, Debug)]
pub struct SweepArgs {
    /// The sweep file (TOML: `base`, `[grid]` and/or `[random]`).
    pub sweep: PathBuf,
    /// Print the points (and how far each has got) without running anything.
    #[arg(long, conflicts_with_all = ["point", "emit"])]
    pub list: bool,
    /// Points run at once, each a child process with cores/N compute threads.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run points that failed before again (they are skipped otherwise).
    #[arg(long)]
    pub rerun_failed: bool,
    /// Run only point I (what each Slurm array task runs).
    #[arg(long, value_name = "I", conflicts_with = "emit")]
    pub point: Option<usize>,
    /// Write a job script for a scheduler instead of running here.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Slurm partition (with --emit slurm).
    #[arg(long, requires = "emit")]
    pub partition: Option<String>,
    /// GPUs for each point (with --emit slurm).
    #[arg(long, requires = "emit")]
    pub gpus_per_task: Option<u32>,
    /// Time limit of each point, e.g. `02:00:00` (with --emit slurm).
    #[arg(long, requires = "emit")]
    pub time: Option<String>,
    /// CPUs for each point (with --emit slurm).
    #[arg(long, requires = "emit")]
    pub cpus_per_task: Option<u32>,
    /// Override a spec key for every point, before the point's own values (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Where `$DATA/...` paths point (default: $GPTLAB_DATA, else ./datasets).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Stop a point whose process has used no CPU and written nothing for this many seconds
    /// (it hangs) and record it as failed; 0 never stops one.
    #[arg(long, value_name = "SECONDS", default_value_t = watch::DEFAULT_STALL_AFTER.as_secs())]
    pub stall_timeout: u64,
    /// Results folder; the sweep writes to <results>/<sweep name>/ (default: $GPTLAB_RESULTS,
    /// else ./results).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Train every stage of every point, even one whose inputs match a finished stage of
    /// another point or an earlier run (by default that stage is trained once and shared).
    #[arg(long)]
    pub no_reuse: bool,
}

/// Runs `gptlab sweep`; true when everything asked for succeeded.
pub fn run(args: SweepArgs) -> Result<bool> {
    let options = SweepOptions {
        sweep: args.sweep,
        list: args.list,
        jobs: args.jobs,
        rerun_failed: args.rerun_failed,
        no_reuse: args.no_reuse,
        point: args.point,
        emit: args.emit.map(|emit| match emit {
            Emit::Slurm => crate::sweep::Emit::Slurm,
        }),
        partition: args.partition,
        gpus_per_task: args.gpus_per_task,
        time: args.time,
        cpus_per_task: args.cpus_per_task,
        load: LoadOptions {
            data_root: data_root_from(args.data_root),
            sets: args.sets,
        },
        stall_after: (args.stall_timeout > 0).then(|| Duration::from_secs(args.stall_timeout)),
        results_root: results_root(args.results),
    };
    crate::sweep::run_command(options)
}
