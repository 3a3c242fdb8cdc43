//! `gptlab sweep`: run every point of a sweep file (see `crate::spec::sweep`), several at once,
//! skipping finished points, resuming interrupted ones, rerunning failed ones on request; or
//! write a Slurm job-array script that runs them across a cluster.
//!
//! - `points.rs`  the sweep opened: each point's resolved spec, run folder and current status
//! - `status.rs`  points/<i>.json, one per point, written atomically
//! - `summary.rs` summary.csv, the printed table, the comparison report
//! - `run.rs`     what to do with a point, and running it as a child `gptlab run`
//! - `pilot.rs`   which point runs first, alone on every core, to train the shared stages
//! - `watch.rs`   which points run and for how long; a point that hangs is stopped
//! - `slurm.rs`   the sbatch script

pub mod pilot;
pub mod points;
pub mod run;
pub mod slurm;
pub mod status;
pub mod summary;
pub mod watch;

use crate::spec::LoadOptions;
use anyhow::Result;
use points::OpenSweep;
use std::path::PathBuf;
use std::time::Duration;

/// A job script to write instead of running the points here.
#[derive(Clone, Copy, Debug)]
pub enum Emit {
    /// An sbatch job-array script, one point per array task.
    Slurm,
}

/// What `gptlab sweep` does (its flags are parsed in src/cli/sweep.rs).
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The sweep file (TOML: `base`, `[grid]` and/or `[random]`).
    pub sweep: PathBuf,
    /// Print the points (and how far each has got) without running anything.
    pub list: bool,
    /// Points run at once, each a child process with cores/N compute threads.
    pub jobs: usize,
    /// Run points that failed before again (they are skipped otherwise).
    pub rerun_failed: bool,
    /// Points train every stage themselves (`gptlab run --no-reuse`).
    pub no_reuse: bool,
    /// Run only this point (what each Slurm array task runs).
    pub point: Option<usize>,
    /// Write a job script for a scheduler instead of running here.
    pub emit: Option<Emit>,
    /// Slurm partition, GPUs, time limit and CPUs of each point (with `emit`).
    pub partition: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// `--set` overrides for every point (before the point's own values) and the data root.
    pub load: LoadOptions,
    /// Stop a point whose process has used no CPU and written nothing this long (None: never).
    pub stall_after: Option<Duration>,
    /// The sweep writes to <results_root>/<sweep name>/.
    pub results_root: PathBuf,
}

/// Runs `gptlab sweep`; true when everything asked for succeeded.
pub fn run_command(args: SweepOptions) -> Result<bool> {
    let open = OpenSweep::open(&args.sweep, args.load.clone(), &args.results_root)?;

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
            no_reuse: args.no_reuse,
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
        no_reuse: args.no_reuse,
        stall_after: args.stall_after,
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
