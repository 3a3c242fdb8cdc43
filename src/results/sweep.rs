//! Where a sweep keeps its files, all under one folder so that every node of a cluster that
//! sees that folder sees the same sweep:
//!
//! ```text
//! results/<sweep>/
//!   runs/<experiment>/<run-id>/   each point's run (the usual run folder)
//!   points/<i>.json  <i>.log      each point's status (written atomically) and its output
//!   summary.csv                   one row per point, regenerated from points/*.json
//!   compare/compare.html          the comparison report over the finished points
//!   sweep.sbatch  slurm/          the Slurm job-array script and its logs (--emit slurm)
//!   .lock                         serialises summary/compare writers across processes
//! ```

use std::path::{Path, PathBuf};

/// One row per point (the sweep's table of results).
pub const SUMMARY_CSV: &str = "summary.csv";

#[derive(Clone, Debug)]
pub struct SweepDirs {
    pub root: PathBuf,
}

impl SweepDirs {
    pub fn new(results_root: &Path, sweep_name: &str) -> Self {
        SweepDirs {
            root: results_root.join(sweep_name),
        }
    }

    /// The `--results` folder each point's `gptlab run` gets.
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn points(&self) -> PathBuf {
        self.root.join("points")
    }

    pub fn status(&self, index: usize) -> PathBuf {
        self.points().join(format!("{index}.json"))
    }

    pub fn log(&self, index: usize) -> PathBuf {
        self.points().join(format!("{index}.log"))
    }

    pub fn summary_csv(&self) -> PathBuf {
        self.root.join(SUMMARY_CSV)
    }

    pub fn compare(&self) -> PathBuf {
        self.root.join("compare")
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join(".lock")
    }

    pub fn slurm_script(&self) -> PathBuf {
        self.root.join("sweep.sbatch")
    }

    pub fn slurm_logs(&self) -> PathBuf {
        self.root.join("slurm")
    }
}
