//! `gptlab compare RUN...`: one page over several runs.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CompareArgs {
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    #[arg(long, default_value = "results/compare")]
    pub out: PathBuf,
    /// Sort the table by this metric (`stage/metric`, `-` prefix for descending).
    #[arg(long)]
    pub sort_by: Option<String>,
    /// A final metric (`stage/metric`) to chart against the keys that differ between the
    /// runs (repeatable; default: every val/loss and eval/exact_match).
    #[arg(long = "metric", value_name = "STAGE/METRIC")]
    pub metrics: Vec<String>,
}

pub fn run(args: CompareArgs) -> Result<bool> {
    let options = crate::report::CompareOptions {
        sort_by: args.sort_by.as_deref(),
        keys: None,
        metrics: &args.metrics,
    };
    let path = crate::report::write_comparison_with(&args.runs, &args.out, &options)?;
    println!("{}", path.display());
    Ok(true)
}
