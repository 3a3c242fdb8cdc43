//! `gptlab run SPEC...`: every spec in turn; one failing does not stop the others.

use super::common::{results_root, SpecArgs};
use crate::runner::{self, Reuse, RunOptions};
use crate::spec::expand_spec_args;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RunArgs {
    #[arg(required = true)]
    pub specs: Vec<String>,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Results folder (default: $GPTLAB_RESULTS, else ./results).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Train every stage, even one whose inputs match a finished stage of an earlier run
    /// under the results folder (by default that stage's folder is taken instead).
    #[arg(long)]
    pub no_reuse: bool,
}

/// `gptlab run`: every spec in turn; one failing does not stop the others.
pub fn run(args: RunArgs) -> Result<bool> {
    let opts = RunOptions {
        results_root: results_root(args.results),
        load: args.spec.load_options(),
        reuse: if args.no_reuse {
            Reuse::Off
        } else {
            Reuse::ByIdentity
        },
    };
    let paths = expand_spec_args(&args.specs)?;
    let mut failed = Vec::new();
    for path in &paths {
        match runner::run_spec(path, &opts) {
            Ok(dir) => println!("{}", dir.display()),
            Err(e) => {
                // Most errors already start with the spec's `file:line`.
                let message = format!("{e:#}");
                match message.contains(&*path.to_string_lossy()) {
                    true => eprintln!("error: {message}"),
                    false => eprintln!("error: {}: {message}", path.display()),
                }
                failed.push(path.display().to_string());
            }
        }
    }
    if paths.len() > 1 && !failed.is_empty() {
        eprintln!(
            "{} of {} experiments failed: {}",
            failed.len(),
            paths.len(),
            failed.join(", ")
        );
    }
    Ok(failed.is_empty())
}
