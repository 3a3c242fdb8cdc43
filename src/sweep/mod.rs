//! `gptlab sweep`: run every point of a sweep file (see `crate::spec::sweep`), several at once,
//! skipping finished points, resuming interrupted ones, rerunning failed ones on request; or
//! write a Slurm job-array script that runs them across a cluster.
//!
//! - `points.rs`  the sweep opened: each point's resolved spec, run folder and current status
//! - `status.rs`  points/<i>.json, one per point, written atomically
//! - `lock.rs`    the lock that serialises summary writers across processes
//! - `summary.rs` summary.csv, the printed table, the comparison report
//! - `run.rs`     what to do with a point, and running it as a child `gptlab run`
//! - `watch.rs`   which points run and for how long; a point that hangs is stopped
//! - `slurm.rs`   the sbatch script

pub mod lock;
pub mod points;
pub mod run;
pub mod slurm;
pub mod status;
pub mod summary;
pub mod watch;

use crate::spec::{data_root_from, LoadOptions};
use anyhow::Result;
use points::OpenSweep;
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
}

/// Runs `gptlab sweep`; true when everything asked for succeeded.
pub fn run_cli(args: SweepArgs) -> Result<bool> {
    let shared = LoadOptions {
        data_root: data_root_from(args.data_root.clone()),
        sets: args.sets.clone(),
    };
    let results_root = args
        .results
        .clone()
        .or_else(|| std::env::var_os("GPTLAB_RESULTS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("results"));
    let open = OpenSweep::open(&args.sweep, shared, &results_root)?;

    if args.list {
        return Ok(list(&open));
    }
    if let Some(Emit::Slurm) = args.emit {
        let options = slurm::SlurmOptions {
            partition: args.partition,
            gpus_per_task: args.gpus_per_task,
            time: args.time,
            cpus_per_task: args.cpus_per_task,
            rerun_failed: args.rerun_failed,
        };
        // Say now, not on the cluster, which points cannot run.
        for resolved in &open.points {
            if let Err(error) = &resolved.spec {
                eprintln!("warning: point {} will fail: {error}", resolved.point.index);
            }
        }
        let path = slurm::write_slurm_script(&open, &options)?;
        println!(
            "{} points; submit with: sbatch {}",
            open.points.len(),
            path.display()
        );
        return Ok(true);
    }
    let settings = run::RunSettings {
        jobs: args.jobs,
        rerun_failed: args.rerun_failed,
        stall_after: (args.stall_timeout > 0).then(|| Duration::from_secs(args.stall_timeout)),
    };
    match args.point {
        Some(index) => run::run_single_point(&open, index, settings),
        None => run::run_sweep(&open, settings),
    }
}

/// One line per point: index, state, label, overrides; invalid points with their error.
/// False when some point's spec does not load.
fn list(open: &OpenSweep) -> bool {
    println!(
        "sweep `{}`: {} points of {} (results: {})",
        open.sweep.name,
        open.points.len(),
        open.sweep.base.display(),
        open.dirs.root.display()
    );
    let mut valid = true;
    for (resolved, status) in open.points.iter().zip(open.statuses()) {
        println!(
            "{:>4}  {:<11} {}   [{}]",
            resolved.point.index,
            status.state.as_str(),
            status.label,
            resolved.point.set_args().join(" ")
        );
        if let Err(error) = &resolved.spec {
            println!("      invalid: {error}");
            valid = false;
        }
    }
    valid
}
