//! `gptlab validate SPEC...`: load every spec and say what it would run, without running it.
//! It makes every check `gptlab run` makes before training, every data file read included.

use super::common::SpecArgs;
use crate::runner::read_all_data;
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
        let loaded = load_spec(&path, &spec.load_options());
        match loaded.and_then(|l| read_all_data(&l).map(|_| l)) {
            Ok(l) => println!("ok {}: {}", path.display(), l.summary()),
            Err(e) => {
                eprintln!("error: {e:#}");
                ok = false;
            }
        }
    }
    Ok(ok)
}
