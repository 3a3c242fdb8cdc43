//! `gptlab validate SPEC...`: load every spec and say what it would run, without running it.

use super::common::SpecArgs;
use crate::spec::{expand_spec_args, load_spec};
use anyhow::Result;

#[derive(clap::Args)]
pub struct ValidateArgs {
    #[arg(required = true)]
    pub specs: Vec<String>,
    #[command(flatten)]
    pub spec: SpecArgs,
}

pub fn run(args: ValidateArgs) -> Result<bool> {
    validate_specs(&args.specs, &args.spec)
}

fn validate_specs(specs: &[String], spec: &SpecArgs) -> Result<bool> {
    let mut ok = true;
    for path in expand_spec_args(specs)? {
        match load_spec(&path, &spec.load_options()) {
            Ok(l) => println!("ok {}: {}", path.display(), l.summary()),
            Err(e) => {
                eprintln!("error: {e:#}");
                ok = false;
            }
        }
    }
    Ok(ok)
}
