//! `gptlab report RUN`: rebuild a run's report.html / report.md from its folder.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    pub run: PathBuf,
}

pub fn run(args: ReportArgs) -> Result<bool> {
    let path = crate::report::write_run_report(&args.run)?;
    println!("{}", path.display());
    Ok(true)
}
