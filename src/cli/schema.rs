//! `gptlab schema [--sweep]`: the JSON Schema of experiment (or sweep) files, for editors.

use crate::spec::json_schema::{experiment_schema_text, sweep_schema_text};
use anyhow::Result;

#[derive(clap::Args)]
pub struct SchemaArgs {
    /// The schema of sweep files instead of experiment files.
    #[arg(long)]
    pub sweep: bool,
}

pub fn run(args: SchemaArgs) -> Result<bool> {
    let text = match args.sweep {
        true => sweep_schema_text(),
        false => experiment_schema_text(),
    };
    print!("{text}");
    Ok(true)
}
