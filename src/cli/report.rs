//! `gptlab report RUN`: rebuild a run's report.html / report.md from its folder; with
//! `--set report.KEY=VALUE`, evaluate the trained stages again with other report settings.

use crate::spec::data_root_from;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    pub run: PathBuf,
    /// Change a `[report]` key (e.g. `--set report.sampling.temperature=0.5`, repeatable):
    /// samples, probes, evaluation and charts are made again on the trained stages, none
    /// trains, into a new run beside RUN (RUN's report stays as it was).
    #[arg(long = "set", value_name = "report.KEY=VALUE")]
    pub sets: Vec<String>,
    /// Where `$DATA/...` paths point (default: $GPTLAB_DATA, else ./datasets).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> Result<bool> {
    if args.sets.is_empty() {
        let path = crate::report::write_run_report(&args.run)?;
        println!("{}", path.display());
        return Ok(true);
    }
    let run = crate::runner::report_again(&args.run, &args.sets, data_root_from(args.data_root))?;
    println!("{}", run.display());
    Ok(true)
}
